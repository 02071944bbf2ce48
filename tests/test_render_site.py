"""SiteRenderer: the keys of planned files, and the entries and bodies it keeps."""

from __future__ import annotations

import shutil

import pytest

import feeds.render.site
from conftest import REPO, make_config, post_text, write_post
from feeds.build import run_pipeline
from feeds.render.site import SiteRenderer

EXAMPLES = REPO / "examples" / "posts"


def rendered(config) -> dict[str, tuple[str, bytes]]:
    """path → (key, bytes) of every file of the site."""
    renderer = SiteRenderer(config, run_pipeline(config).catalog)
    return {p.path: (p.key, p.render().body) for p in renderer.plan()}


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("examples")
    # small pages: most feeds have archives
    config = make_config(EXAMPLES, tmp, feeds={"items": 3})
    return config, rendered(config)


def test_any_renderer_cache_size_gives_the_same_bytes(examples, monkeypatch):
    config, expected = examples
    monkeypatch.setattr(feeds.render.site, "SMALL_SITE_POSTS", 0)  # no site is small enough to keep every fragment
    monkeypatch.setattr(feeds.render.site, "FRAGMENT_BUDGET", 1)  # keeps only the last fragment made
    monkeypatch.setattr(feeds.render.site, "FULL_FRAGMENT_BUDGET", 1)
    monkeypatch.setattr(feeds.render.site, "BODY_BUDGET", 1)
    assert rendered(config) == expected


def assert_equal_keys_mean_equal_bytes(before: dict, after: dict) -> set[str]:
    """The paths whose bytes changed; a path with an unchanged key must have unchanged bytes."""
    changed = set()
    for path in before.keys() & after.keys():
        (old_key, old_body), (new_key, new_body) = before[path], after[path]
        if old_key == new_key:
            assert old_body == new_body, f"{path}: same key, different bytes"
        if old_body != new_body:
            changed.add(path)
    return changed


@pytest.mark.parametrize(
    "change",
    ["edit a post", "add a post", "delete a post", "websub hub", "site url", "feed items"],
)
def test_a_file_keeps_its_key_only_while_its_bytes_stay_the_same(change, tmp_path):
    source = tmp_path / "posts"
    shutil.copytree(EXAMPLES, source)
    settings = {"feeds": {"items": 3}}
    before = rendered(make_config(source, tmp_path, **settings))
    post = next(p for p in sorted(source.rglob("*.md")) if "draft" not in p.read_text(encoding="utf-8"))
    if change == "edit a post":
        post.write_text(post.read_text(encoding="utf-8").replace("title:", "title: edited", 1), encoding="utf-8")
    elif change == "add a post":
        # the newest post: every archive page keeps its entries, and the last
        # one gains a link to a new page
        write_post(source, "new/newest.md", post_text(title="newest", date="2030-01-01 10:00:00"))
    elif change == "delete a post":
        post.unlink()
    elif change == "websub hub":
        settings["websub"] = {"hub": "https://hub.example.com/"}
    elif change == "site url":
        settings["site"] = {"title": "Test site", "url": "https://example.org/blog", "timezone": "Asia/Shanghai"}
    elif change == "feed items":
        settings["feeds"] = {"items": 4}
    after = rendered(make_config(source, tmp_path, **settings))
    changed = assert_equal_keys_mean_equal_bytes(before, after)
    assert changed, "the change changed nothing: not a test of the keys"
    assert len(changed) < len(before) or change in ("site url", "feed items"), "every file changed: not a test of the keys"


def test_feed_documents_are_planned_newest_entry_first(examples):
    config, _ = examples
    renderer = SiteRenderer(config, run_pipeline(config).catalog)
    planned = [p for p in renderer.plan() if p.group]
    assert len({p.path for p in planned}) == len(planned)
    # in one feed, the subscription document (newest entries) before its archives
    site_atom = [p.path for p in planned if p.path.startswith("/atom")]
    assert site_atom[0] == "/atom.xml" and site_atom[-1] == "/atom-1.xml"


def test_a_new_post_rekeys_only_the_archive_pages_whose_links_change(tmp_path):
    # 30 posts with 3 items a page: 27 archived in 9 full pages. A new newest
    # post pushes one entry into a new page 10, so page 9 gains a link to it;
    # pages 1-8 keep their entries and links, so their keys must stay: a live
    # server re-renders whatever is re-keyed, and a large feed has hundreds
    # of pages.
    source = tmp_path / "posts"
    for day in range(1, 31):
        write_post(source, f"one/p{day:02d}.md", post_text(title=f"post {day}", date=f"2024-01-{day:02d} 10:00:00", categories=["One"]))
    before = rendered(make_config(source, tmp_path, feeds={"items": 3}))
    write_post(source, "one/p31.md", post_text(title="post 31", date="2024-02-01 10:00:00", categories=["One"]))
    after = rendered(make_config(source, tmp_path, feeds={"items": 3}))
    changed = assert_equal_keys_mean_equal_bytes(before, after)
    rekeyed = {path for path in before.keys() & after.keys() if before[path][0] != after[path][0]}
    site_pages = {path for path in rekeyed if path.startswith(("/atom-", "/rss-", "/feed-"))}
    assert "/atom-10.xml" in after and "/atom-10.xml" not in before
    assert site_pages == {"/atom-9.xml", "/rss-9.xml", "/feed-9.json"}, sorted(site_pages)
    assert {"/atom-9.xml", "/rss-9.xml"} <= changed  # (JSON Feed links only to older pages: its page 9 is re-made the same)
