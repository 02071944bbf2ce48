"""One fixture post per oddity, its expected metadata beside it (NAME.md + NAME.toml)."""

from __future__ import annotations

import dataclasses
import shutil
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.build import run_pipeline
from feeds.model import Article
from feeds.normalize import article_digest, parse_date, restore_title
from feeds.text import collapse, collapse_head
from zoneinfo import ZoneInfo

from conftest import FIXTURES, make_config

CASES = sorted(p.stem for p in (FIXTURES / "normalize").glob("*.md"))


def _run_one(name: str, tmp_path: Path):
    source = tmp_path / "posts"
    source.mkdir()
    shutil.copy(FIXTURES / "normalize" / f"{name}.md", source / f"{name}.md")
    state = run_pipeline(make_config(source, tmp_path), use_cache=False)
    return state


@pytest.mark.parametrize("name", CASES)
def test_fixture(name: str, tmp_path: Path):
    expect = tomllib.loads((FIXTURES / "normalize" / f"{name}.toml").read_text(encoding="utf-8"))
    state = _run_one(name, tmp_path)
    problems = [str(p) for p in state.problems]
    assert not [p for p in state.problems if p.severity == "error"], problems
    for fragment in expect.get("warnings", []):
        assert any(fragment in p for p in problems), f"no warning containing {fragment!r} in {problems}"
    if not expect.get("warnings"):
        assert problems == []
    for problem in state.problems:
        assert problem.path.endswith(f"{name}.md")
    articles = state.catalog.articles
    if expect.get("published", True) is False:
        assert articles == ()
        return
    assert len(articles) == 1
    article = articles[0]
    if "title" in expect:
        assert article.title == expect["title"]
    if "date" in expect:
        if expect["date"] == "undated":
            assert article.undated
        else:
            assert not article.undated
            assert article.date == datetime.fromisoformat(expect["date"])
            assert article.date.tzinfo is not None
    if "categories" in expect:
        assert [list(h) for h in article.categories] == expect["categories"]
    if "image" in expect:
        assert (article.image or "") == expect["image"]
    if "author" in expect:
        assert article.author == expect["author"]
    if "id" in expect:
        assert article.id == expect["id"]
    if "tags" in expect:
        assert list(article.tags) == expect["tags"]
    if "summary" in expect:
        assert article.summary == expect["summary"]


def test_fixture_ids_and_links_do_not_depend_on_text_or_site_url(tmp_path: Path):
    source = tmp_path / "posts"
    source.mkdir()
    post = source / "a.md"
    shutil.copy(FIXTURES / "normalize" / "date_rfc822.md", post)
    first = run_pipeline(make_config(source, tmp_path), use_cache=False).catalog.articles[0]
    post.write_text(post.read_text(encoding="utf-8").replace("正文内容", "改过的正文"), encoding="utf-8")
    config = make_config(source, tmp_path, site={"url": "https://example.org/blog"})
    second = run_pipeline(config, use_cache=False).catalog.articles[0]
    assert first.id == second.id == "a"
    assert second.permalink.startswith("https://example.org/blog/posts/a/")

    from feeds.render.common import entry_id

    assert entry_id(first.id) == entry_id(second.id)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Tue, 16 Nov 2021 09:34:36 GMT", "2021-11-16T09:34:36+00:00"),
        ("Tue, 16 Nov 2021 17:34:36 +0800", "2021-11-16T09:34:36+00:00"),
        ("2021-04-11 00:30:33", "2021-04-10T16:30:33+00:00"),
        ("2021-04-11T00:30:33", "2021-04-10T16:30:33+00:00"),
        ("2021-04-11T00:30:33.250+02:00", "2021-04-10T22:30:33.250000+00:00"),
        ("2021/04/11 00:30:33", "2021-04-10T16:30:33+00:00"),
        ("2022-03-02", "2022-03-01T16:00:00+00:00"),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text, ZoneInfo("Asia/Shanghai")) == datetime.fromisoformat(expected)


@pytest.mark.parametrize("text", ["Invalid Date", "", "yesterday", "2021-13-01", "Tue, 32 Nov 2021 09:34:36 GMT"])
def test_unreadable_dates(text):
    assert parse_date(text, ZoneInfo("Asia/Shanghai")) is None


def test_naive_date_across_dst_uses_site_timezone():
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_date("2021-07-01 12:00:00", berlin) == datetime(2021, 7, 1, 10, tzinfo=timezone.utc)
    assert parse_date("2021-01-01 12:00:00", berlin) == datetime(2021, 1, 1, 11, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "title, body, expected",
    [
        ("A_B_", "原标题：A“B”", "A“B”"),
        ("CI_CD 实践", "原标题：CI/CD 实践", "CI/CD 实践"),
        ("What_ a day", "原标题：What? a day", "What? a day"),
        ("A_B", "原标题：AXB", "A_B"),  # X was not a character scrapers replace
        ("A_B", "原标题：A“B” and more", "A_B"),  # a different, longer title
        ("AB", "原标题：A“B”", "AB"),  # nothing was replaced
    ],
)
def test_restore_title(title, body, expected):
    assert restore_title(title, body) == expected


def _another(value):
    """A different value of the same kind, for every kind an Article holds."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond + 1)
    if isinstance(value, tuple):
        return value + (("x",) if value and isinstance(value[0], tuple) else "x",)
    assert value is None, value
    return "x"


def test_article_digest_covers_every_field():
    when = datetime(2021, 11, 16, 9, 34, 36, tzinfo=timezone.utc)
    article = Article(
        id="a", source="a.md", title="T", date=when, updated=when, categories=(("c", "d"),), tags=("t",), author="A",
        image=None, original_url="https://example.org/", permalink=None, page="/posts/a/", summary="s", body="<p>b</p>", description=None,
    )
    seen = {article_digest(article)}
    for field in dataclasses.fields(Article):
        if field.name != "digest":
            changed = dataclasses.replace(article, **{field.name: _another(getattr(article, field.name))})
            seen.add(article_digest(changed))
    assert len(seen) == len(dataclasses.fields(Article))  # every field but digest changes it
    # the body's length keeps body and the other fields apart
    assert article_digest(dataclasses.replace(article, body="")) != article_digest(dataclasses.replace(article, body="", summary="s<p>b</p>"))


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab中 \t\n\r\u3000\xa0\x1c.")), max_size=600), length=st.integers(min_value=1, max_value=80))
def test_collapse_head_is_the_head_of_collapse(text, length):
    assert collapse_head(text, length) == collapse(text)[:length]
