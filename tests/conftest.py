"""Shared fixtures: a config over any folder of posts, and the shared corpus."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from feeds.config import Config, config_from_dict

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "posts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_config(source: Path, tmp: Path, **sections) -> Config:
    """A Config reading posts from `source`, writing under `tmp`.

    `sections` override whole tables, e.g. feeds={"items": 2}.
    """
    data = {
        "site": {"title": "Test site", "url": "http://127.0.0.1:8000", "timezone": "Asia/Shanghai"},
        "source": {"dir": str(source)},
        "output": {"dir": str(tmp / "public")},
        "build": {"cache_dir": str(tmp / "cache"), "workers": 1},
    }
    for name, table in sections.items():
        data.setdefault(name, {}).update(table)
    return config_from_dict(data, str(tmp / "config.toml"), tmp)


def write_post(folder: Path, rel: str, text: str | bytes) -> Path:
    """Write a post file (dedented when text) below `folder`."""
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def post_text(title="A post", categories=("组", "源", "频道"), date="Tue, 16 Nov 2021 09:34:36 GMT", body="<p>Hello world</p>", **extra) -> str:
    """A post in the mirror's current layout."""
    lines = ["---", f"title: '{title}'", "categories: "]
    lines += [f" - {c}" for c in categories]
    for key, value in extra.items():
        lines.append(f"{key}: {value}")
    lines += ["author: Tester", "comments: false", f"date: {date}", "---", "", "<div>   ", body, "  ", "</div>", " " * 12]
    return "\n".join(lines)


@pytest.fixture
def posts_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "posts"
    folder.mkdir()
    return folder


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus not present (../shared/corpus/posts)")
    return CORPUS
