"""The no-change shortcut of `feeds build`, and the posts edited just before a build."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from conftest import post_text, write_post
from feeds import pipeline, uptodate
from feeds.cli import main
from feeds.collect import scan_sources
from feeds.config import load_config

SHORTCUT = "nothing changed since the last build"


def site(tmp: Path) -> tuple[Path, Path]:
    source = tmp / "posts"
    for i in range(3):
        write_post(source, f"p{i}.md", post_text(title=f"post {i}", body=f"<p>body {i}</p>"))
    config = tmp / "config.toml"
    config.write_text(
        f'[site]\ntitle = "T"\nurl = "http://127.0.0.1:8000"\n[source]\ndir = "{source}"\n'
        f'[output]\ndir = "{tmp / "public"}"\n[build]\ncache_dir = "{tmp / "cache"}"\nworkers = 1\n',
        encoding="utf-8",
    )
    return source, config


def build(config: Path) -> str:
    result = CliRunner().invoke(main, ["build", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def record(tmp: Path) -> dict:
    return json.loads((tmp / ".public.builds" / uptodate.RECORD_NAME).read_text(encoding="utf-8"))


def test_the_build_right_after_an_edit_takes_the_shortcut(tmp_path, monkeypatch):
    # every post now counts as just changed: none is trusted by its stat alone
    monkeypatch.setattr(pipeline, "RACY_SECONDS", 3600.0)
    monkeypatch.setattr(uptodate, "RACY_SECONDS", 3600.0)
    source, config = site(tmp_path)
    build(config)
    post = source / "p1.md"
    post.write_text(post.read_text(encoding="utf-8").replace("body 1", "body one"), encoding="utf-8")
    assert SHORTCUT not in build(config)  # the edit is built
    assert set(record(tmp_path)["recent_keys"]) == {"p0.md", "p1.md", "p2.md"}
    assert SHORTCUT in build(config)  # every post read again, and unchanged
    assert "body one" in (tmp_path / "public" / "atom.xml").read_text(encoding="utf-8")
    post.write_text(post.read_text(encoding="utf-8").replace("body one", "body two"), encoding="utf-8")
    assert SHORTCUT not in build(config)
    assert "body two" in (tmp_path / "public" / "atom.xml").read_text(encoding="utf-8")


def test_a_rewrite_the_stat_cannot_see_is_found_by_content(tmp_path, monkeypatch):
    """A write in the same clock tick as the last one leaves the signature as it was: the content tells."""
    monkeypatch.setattr(pipeline, "RACY_SECONDS", 3600.0)
    monkeypatch.setattr(uptodate, "RACY_SECONDS", 3600.0)
    source, config = site(tmp_path)
    build(config)
    loaded = load_config(config)
    saved = record(tmp_path)
    unchanged_signatures = (saved["stamp"], time.time())  # what fingerprint() gives when no stat changed

    def shortcut() -> bool:
        scan = scan_sources(loaded.source.dir, loaded.source.pattern)
        return uptodate.check(loaded, False, scan, unchanged_signatures) is not None

    assert shortcut()
    post = source / "p2.md"
    original = post.read_bytes()
    post.write_bytes(original.replace(b"body 2", b"body 3"))  # same size, other bytes
    assert not shortcut()
    post.write_bytes(original)
    assert shortcut()
    # a recently changed post the record holds no key for is never trusted
    del saved["recent_keys"]["p0.md"]
    (tmp_path / ".public.builds" / uptodate.RECORD_NAME).write_text(json.dumps(saved), encoding="utf-8")
    assert not shortcut()
