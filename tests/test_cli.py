"""The command line as a user meets it: messages, exit codes, progress."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, post_text, write_post

LINE = re.compile(r"^[^\n]+?(:\d+)?: (error|warning): .+$")


def run(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "feeds", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def write_config(tmp: Path, source: Path, extra: str = "") -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f'[site]\ntitle = "T"\nurl = "http://127.0.0.1:8000"\n[source]\ndir = "{source}"\n'
        f'[output]\ndir = "{tmp / "public"}"\n[build]\ncache_dir = "{tmp / "cache"}"\n{extra}',
        encoding="utf-8",
    )
    return config


def test_build_with_one_bad_post_publishes_the_rest_and_exits_1(tmp_path):
    source = tmp_path / "posts"
    write_post(source, "good.md", post_text(title="good"))
    write_post(source, "bad.md", "---\ntitle: 'x'\ncategories: [a\n---\nbody\n")
    result = run("build", "--config", str(write_config(tmp_path, source)))
    assert result.returncode == 1, result.stderr
    lines = [l for l in result.stderr.splitlines() if l]
    assert lines and all(LINE.match(l) for l in lines), lines
    assert any("bad.md:" in l and ": error: " in l for l in lines)
    assert "Traceback" not in result.stderr + result.stdout
    assert "published 1 of 2 posts" in result.stdout
    assert (tmp_path / "public" / "posts" / "good" / "index.html").is_file()


def test_warnings_exit_0_unless_strict(tmp_path):
    source = tmp_path / "posts"
    write_post(source, "undated.md", post_text(title="u", date="Invalid Date"))
    config = str(write_config(tmp_path, source))
    assert run("build", "--config", config).returncode == 0
    strict = run("build", "--config", config, "--strict")
    assert strict.returncode == 1
    assert "undated.md:" in strict.stderr and "warning" in strict.stderr


def test_check_reports_every_problem_and_writes_nothing(tmp_path):
    source = tmp_path / "posts"
    write_post(source, "a.md", "no front matter at all")
    write_post(source, "b.md", "---\ntitle: a\n")
    write_post(source, "c.md", b"---\ntitle: '\xb1\xea\xcc\xe2'\n---\n")
    result = run("check", "--config", str(write_config(tmp_path, source)))
    assert result.returncode == 1
    assert "b.md:1: error: front matter opened" in result.stderr
    assert "c.md:2: error: not UTF-8" in result.stderr
    assert "a.md:1: warning: no front matter" in result.stderr
    assert not (tmp_path / "public").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('[site]\nurl = 5\n', "[site] url: expected a string, got integer"),
        ('[site]\ntitel = "x"\n', "[site] titel: unknown key"),
        ('[nope]\n', "[nope]: unknown section"),
        ('[feeds]\nformats = ["atom", "xml"]\n', "[feeds] formats"),
        ('[site]\ntimezone = "Mars/Olympus"\n', "unknown time zone"),
        ("[site\n", "invalid TOML"),
    ],
)
def test_bad_config_exits_2_naming_file_and_key(tmp_path, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content, encoding="utf-8")
    result = run("build", "--config", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_and_bad_arguments_exit_2(tmp_path):
    assert run("build", "--config", str(tmp_path / "none.toml")).returncode == 2
    assert run("build", "--no-such-flag").returncode == 2


def test_feeds_config_environment_variable(tmp_path):
    import os

    source = tmp_path / "posts"
    write_post(source, "good.md", post_text(title="good"))
    env = dict(os.environ, FEEDS_CONFIG=str(write_config(tmp_path, source)))
    result = run("build", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "public" / "atom.xml").is_file()


def test_pipe_gets_only_the_summary_no_progress_bar(tmp_path):
    source = tmp_path / "posts"
    for i in range(60):
        write_post(source, f"p{i}.md", post_text(title=f"p{i}"))
    result = run("build", "--config", str(write_config(tmp_path, source)))
    assert result.returncode == 0
    assert "\r" not in result.stderr and "█" not in result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("published 60 of 60 posts")


def test_bundled_config_builds_the_examples(tmp_path):
    result = run("build", "--config", str(REPO / "config.toml"), "--out", str(tmp_path / "out"), "--no-cache")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "index.html").is_file()
