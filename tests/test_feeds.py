"""Feed documents as readers see them: parse, order, windows, archives, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import pytest
from lxml import etree

from feeds.build import build_in_memory

from conftest import REPO, make_config, post_text, write_post

EXAMPLES = REPO / "examples" / "posts"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    config = make_config(EXAMPLES, tmp)
    state, files = build_in_memory(config)
    return config, state, files


def local(url: str) -> str:
    return unquote(urlsplit(url).path)


def test_examples_publish_every_post_but_the_draft(site):
    _, state, _ = site
    assert len(state.catalog.articles) >= 20
    assert state.load.drafts == 1
    assert not [p for p in state.problems if p.severity == "error"]


def test_every_xml_feed_parses_without_bozo_and_every_json_feed_loads(site):
    _, _, files = site
    feeds = [p for p in files if p.endswith((".xml", ".json"))]
    assert len(feeds) > 100
    for path in feeds:
        body = files[path].body
        if path.endswith(".json"):
            doc = json.loads(body)
            assert doc["version"] == "https://jsonfeed.org/version/1.1"
            continue
        etree.fromstring(body)
        if path.endswith("opml.xml"):
            continue
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert parsed.version in ("atom10", "rss20"), path


def test_site_feed_is_newest_first_with_stable_tie_order(site):
    _, state, files = site
    parsed = feedparser.parse(files["/atom.xml"].body)
    dates = [e.updated_parsed for e in parsed.entries]
    published = [e.published_parsed for e in parsed.entries]
    assert published == sorted(published, reverse=True)
    assert len(parsed.entries) == len(state.catalog.articles)  # fewer than [feeds] items
    assert dates


def test_category_feed_includes_descendants(site):
    _, state, files = site
    group = next(f for f in state.catalog.categories if f.depth == 1 and len(f.children) >= 2)
    group_ids = {e.id for e in feedparser.parse(files[group.path + "atom.xml"].body).entries}
    child_ids = set()
    for child in group.children:
        child_ids |= {e.id for e in feedparser.parse(files[child + "atom.xml"].body).entries}
    assert group_ids == child_ids and group_ids


def test_entries_carry_full_content_summary_author_categories_and_image(site):
    _, state, files = site
    atom = etree.fromstring(files["/atom.xml"].body)
    entry = next(e for e in atom.iter(ATOM + "entry") if "社区食堂" in e.findtext(ATOM + "title"))
    assert entry.findtext(ATOM + "title") == "上海推出更多“社区食堂” “邻里中心”"
    assert entry.find(ATOM + "content").get("type") == "html"
    assert "<p>" in entry.findtext(ATOM + "content")
    assert entry.findtext(ATOM + "summary") and "<" not in entry.findtext(ATOM + "summary")
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "新浪财经"
    assert {c.get("term") for c in entry.iter(ATOM + "category")} >= {"金融", "新浪财经"}
    assert entry.findtext(ATOM + "id").startswith("urn:uuid:")

    rss = feedparser.parse(files["/rss.xml"].body)
    item = next(e for e in rss.entries if e.get("media_thumbnail"))
    assert item.media_thumbnail[0]["url"].startswith("https://")
    assert item.get("content") and item.content[0].value.startswith("<")
    assert item.guidislink is False


def test_rss_channel_links_itself_and_has_ttl(site):
    config, _, files = site
    root = etree.fromstring(files["/rss.xml"].body)
    self_link = root.find(f"channel/{ATOM}link[@rel='self']")
    assert self_link.get("href") == config.site.base_url + "/rss.xml"
    assert int(root.findtext("channel/ttl")) == config.server.max_age // 60


def test_feed_updated_is_newest_entry_not_now(site):
    _, state, files = site
    atom = etree.fromstring(files["/atom.xml"].body)
    newest = max(a.updated for a in state.catalog.articles)
    assert atom.findtext(ATOM + "updated") == newest.isoformat()


def test_two_builds_are_byte_identical(site, tmp_path):
    config, _, files = site
    _, again = build_in_memory(make_config(EXAMPLES, tmp_path))
    assert set(again) == set(files)
    assert all(again[p].body == files[p].body for p in files)


def test_items_limit_and_rfc5005_archives_collect_every_post_once(tmp_path):
    source = tmp_path / "posts"
    for day in range(1, 12):
        write_post(source, f"p{day:02d}.md", post_text(title=f"post {day}", date=f"2021-03-{day:02d} 10:00:00"))
    config = make_config(source, tmp_path, feeds={"items": 3})
    _, files = build_in_memory(config)
    for fmt, name in (("atom", "atom.xml"), ("rss", "rss.xml")):
        path = "/categories/组/源/频道/" + name
        seen: list[str] = []
        hops = 0
        while path:
            root = etree.fromstring(files[path].body)
            parsed = feedparser.parse(files[path].body)
            seen += [e.id for e in parsed.entries]
            links = root.iter(ATOM + "link")
            prev = next((l.get("href") for l in links if l.get("rel") == "prev-archive"), None)
            path = local(prev) if prev else None
            hops += 1
        assert len(seen) == len(set(seen)) == 11, fmt
        assert hops == 4  # current (3) + archives 1..3 (3, 3, 2)
    current = feedparser.parse(files["/categories/组/源/频道/atom.xml"].body)
    assert [e.title for e in current.entries] == ["post 11", "post 10", "post 9"]
    first_page = feedparser.parse(files["/categories/组/源/频道/atom-1.xml"].body)
    assert [e.title for e in first_page.entries] == ["post 3", "post 2", "post 1"]
    assert b"<fh:archive/>" in files["/categories/组/源/频道/atom-1.xml"].body
    doc = json.loads(files["/categories/组/源/频道/feed.json"].body)
    collected = [i["id"] for i in doc["items"]]
    while "next_url" in doc:
        doc = json.loads(files[local(doc["next_url"])].body)
        collected += [i["id"] for i in doc["items"]]
    assert len(collected) == len(set(collected)) == 11


def test_full_archive_pages_do_not_change_when_posts_arrive(tmp_path):
    source = tmp_path / "posts"
    for day in range(1, 10):
        write_post(source, f"p{day:02d}.md", post_text(title=f"post {day}", date=f"2021-03-{day:02d} 10:00:00"))
    config = make_config(source, tmp_path, feeds={"items": 3})
    _, before = build_in_memory(config)
    for day in range(10, 14):
        write_post(source, f"p{day:02d}.md", post_text(title=f"post {day}", date=f"2021-03-{day:02d} 10:00:00"))
    _, after = build_in_memory(config)
    page = "/categories/组/源/频道/atom-1.xml"
    assert before[page].body.replace(b"next-archive", b"") == after[page].body.replace(b"next-archive", b"") or before[page].body == after[page].body
    entries_before = [e.id for e in feedparser.parse(before[page].body).entries]
    entries_after = [e.id for e in feedparser.parse(after[page].body).entries]
    assert entries_before == entries_after


def test_opml_nests_like_the_categories_and_points_at_feeds(site):
    _, state, files = site
    root = etree.fromstring(files["/opml.xml"].body)
    assert root.get("version") == "2.0"
    body = root.find("body")
    top = [o for o in body if o.get("xmlUrl") and "/categories/" in o.get("xmlUrl")]
    assert len(top) == len(state.catalog.top_categories())
    nested = top[0].find("outline")
    assert nested is not None and nested.get("xmlUrl").startswith(top[0].get("htmlUrl"))
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if url:
            assert local(url) in files


def test_html_pages_have_autodiscovery_links(site):
    _, state, files = site
    index = files["/index.html"].body.decode()
    assert '<link rel="alternate" type="application/atom+xml"' in index
    for feed in state.catalog.categories:
        assert feed.path + "index.html" in files
    article = next(p for p in files if p.startswith("/posts/"))
    assert 'rel="alternate" type="application/rss+xml"' in files[article].body.decode()


def test_index_lists_every_category_with_its_count(site):
    _, state, files = site
    index = files["/index.html"].body.decode()
    for feed in state.catalog.categories:
        assert f"({len(feed.articles)})" in index
        assert feed.name.replace("&", "&amp;") in index


def test_archive_pages_carry_summaries_current_document_full_bodies(tmp_path):
    source = tmp_path / "posts"
    for day in range(1, 8):
        write_post(source, f"p{day:02d}.md", post_text(title=f"post {day}", date=f"2021-03-{day:02d} 10:00:00", body=f"<p>full body number {day}</p>"))
    _, files = build_in_memory(make_config(source, tmp_path, feeds={"items": 3}))
    current = files["/atom.xml"].body.decode()
    archive = files["/atom-1.xml"].body.decode()
    assert "full body number 7" in current and "<content" in current
    assert "<content" not in archive and "<summary>full body number 1</summary>" in archive
    rss_archive = files["/rss-1.xml"].body.decode()
    assert "content:encoded" not in rss_archive and "<description>full body number 1</description>" in rss_archive
    item = json.loads(files["/feed-1.json"].body)["items"][0]
    assert "content_html" not in item and item["content_text"].startswith("full body number")
