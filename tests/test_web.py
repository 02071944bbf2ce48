"""The live server's HTTP behaviour, through the WSGI app (no sockets)."""

from __future__ import annotations

import gzip
import json
import time
from email.utils import format_datetime
from datetime import timedelta

import feedparser
from urllib.parse import unquote, urlsplit
import pytest

from feeds.build import build_in_memory
from feeds.web import LiveSite, create_app

from conftest import make_config, post_text, write_post


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "posts"
    write_post(folder, "金融/a.md", post_text(title="第一篇", categories=("金融", "新浪财经", "国内"), date="2021-03-01 10:00:00"))
    write_post(folder, "金融/b.md", post_text(title="Second & more", categories=("金融", "雪球", "净值"), date="2021-03-02 10:00:00", body="<p>" + "长文。" * 300 + "</p>"))
    write_post(folder, "tech/c.md", post_text(title="Rust news", categories=("编程", "开源", "资讯"), date="2021-03-03 10:00:00", body="<p>rust release</p>"))
    return folder


@pytest.fixture
def app(source, tmp_path):
    config = make_config(source, tmp_path, server={"max_age": 120, "reload_seconds": 0})
    return create_app(config, start_reloader=False)


@pytest.fixture
def client(app):
    return app.test_client()


def test_served_bytes_equal_built_files(app, client, source, tmp_path):
    _, files = build_in_memory(app.config["FEEDS"])
    for path, resource in files.items():
        url = path[: -len("index.html")] if path.endswith("/index.html") else path
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.data == resource.body, url


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/rss.xml", "application/rss+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
        ("/categories/金融/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/categories/%E9%87%91%E8%9E%8D/rss.xml", "application/rss+xml; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/categories/金融/", "text/html; charset=utf-8"),
        ("/opml.xml", "text/x-opml; charset=utf-8"),
    ],
)
def test_content_types_cache_and_cors(client, path, content_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "public, max-age=120"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["ETag"].startswith('"')
    assert "Last-Modified" in response.headers
    if path.endswith((".xml", ".json")):
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_etag_and_last_modified_give_304_each_on_its_own(client):
    first = client.get("/atom.xml")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/atom.xml", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/atom.xml", headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get("/atom.xml", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/atom.xml", headers={"If-None-Match": '"stale"'}).status_code == 200
    older = format_datetime(first.last_modified - timedelta(seconds=1), usegmt=True)
    assert client.get("/atom.xml", headers={"If-Modified-Since": older}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    assert client.get("/atom.xml", headers={"If-None-Match": '"stale"', "If-Modified-Since": modified}).status_code == 200
    not_modified = client.get("/atom.xml", headers={"If-None-Match": etag})
    assert not_modified.data == b"" and not_modified.headers["ETag"] == etag


@pytest.mark.parametrize("header", ["garbage", "Tue, 99 Foo 2021", "", "0", "Thu, 01 Jan 1970 00:00:00 GMT, extra"])
def test_malformed_if_modified_since_is_ignored(client, header):
    assert client.get("/atom.xml", headers={"If-Modified-Since": header}).status_code == 200


def test_gzip_when_accepted_and_precompressed(client):
    plain = client.get("/categories/金融/atom.xml")
    packed = client.get("/categories/金融/atom.xml", headers={"Accept-Encoding": "br;q=1, gzip;q=0.8"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert client.get("/categories/金融/atom.xml", headers={"Accept-Encoding": "gzip;q=0"}).headers.get("Content-Encoding") is None
    again = client.get("/categories/金融/atom.xml", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304


def test_head_has_headers_and_no_body(client):
    response = client.head("/rss.xml")
    assert response.status_code == 200 and response.data == b""
    assert int(response.headers["Content-Length"]) == len(client.get("/rss.xml").data)


def test_unknown_paths_get_a_helpful_404(client):
    response = client.get("/categories/nope/atom.xml")
    assert response.status_code == 404
    assert "text/html" in response.headers["Content-Type"]
    assert b"opml.xml" in response.data


def test_category_folder_without_slash_redirects(client):
    response = client.get("/categories/金融")
    assert response.status_code == 301
    assert response.headers["Location"] == "http://127.0.0.1:8000/categories/%E9%87%91%E8%9E%8D/"


def test_writes_are_refused(client):
    assert client.post("/atom.xml").status_code == 405
    assert client.delete("/").status_code == 405


def test_absolute_urls_ignore_the_host_header(client):
    spoofed = client.get("/atom.xml", headers={"Host": "evil.example"}, base_url="http://evil.example")
    assert b"evil.example" not in spoofed.data
    assert b"http://127.0.0.1:8000/atom.xml" in spoofed.data


def test_query_filters(client):
    limited = feedparser.parse(client.get("/atom.xml?limit=1").data)
    assert len(limited.entries) == 1
    only = feedparser.parse(client.get("/rss.xml?filter=rust").data)
    assert [e.title for e in only.entries] == ["Rust news"]
    without = feedparser.parse(client.get("/rss.xml?filterout=RUST|第一").data)
    assert [e.title for e in without.entries] == ["Second & more"]
    brief = json.loads(client.get("/feed.json?brief=5").data)
    assert all(len(i["summary"]) <= 5 for i in brief["items"])
    response = client.get("/atom.xml?limit=2&utm_source=x")
    assert response.status_code == 200 and "ETag" in response.headers
    assert client.get("/atom.xml?limit=2", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=-1", "limit=abc", "limit=99999999999999999999", "limit=1&limit=2", "brief=0", "filter=", "filter=" + "x" * 300, "limit=%EF%BC%91"],
)
def test_bad_query_values_are_400_with_a_reason(client, query):
    response = client.get("/atom.xml?" + query)
    assert response.status_code == 400
    assert response.data.startswith(b"Bad request: ")


def test_query_on_a_page_is_400_not_500(client):
    assert client.get("/?limit=3").status_code == 400
    assert client.get("/?utm_source=newsletter").status_code == 200


def test_new_changed_and_deleted_posts_appear_after_refresh(source, tmp_path):
    config = make_config(source, tmp_path, server={"reload_seconds": 0})
    live = LiveSite(config)
    client = create_app(config, live=live, start_reloader=False).test_client()
    assert len(feedparser.parse(client.get("/atom.xml").data).entries) == 3
    assert live.refresh() is False  # nothing changed
    write_post(source, "tech/d.md", post_text(title="Brand new", categories=("编程", "开源", "资讯"), date="2021-03-04 10:00:00"))
    (source / "金融/a.md").unlink()
    assert live.refresh() is True
    titles = [e.title for e in feedparser.parse(client.get("/atom.xml").data).entries]
    assert titles == ["Brand new", "Rust news", "Second & more"]
    assert client.get("/categories/金融/新浪财经/").status_code == 404


def test_reloader_thread_picks_up_a_new_post(source, tmp_path):
    config = make_config(source, tmp_path, server={"reload_seconds": 0.2})
    app = create_app(config)
    client = app.test_client()
    try:
        write_post(source, "tech/e.md", post_text(title="Live one", categories=("编程", "开源", "资讯"), date="2021-03-05 10:00:00"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if b"Live one" in client.get("/atom.xml").data:
                break
            time.sleep(0.1)
        else:
            pytest.fail("new post not served within 5 s")
    finally:
        app.extensions["feeds.live"].stop()


def test_websub_hub_links_and_pings_only_for_changed_feeds(source, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs

    received: list[str] = []

    class Hub(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = parse_qs(body)
            assert form["hub.mode"] == ["publish"]
            received.extend(form["hub.url"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        hub_url = f"http://127.0.0.1:{hub.server_address[1]}/hub"
        config = make_config(source, tmp_path, websub={"hub": hub_url}, server={"reload_seconds": 0})
        app = create_app(config, start_reloader=False)
        client = app.test_client()
        atom = client.get("/atom.xml").data.decode()
        assert f'<link href="{hub_url}" rel="hub"/>' in atom and 'rel="self"' in atom
        assert f'<atom:link href="{hub_url}" rel="hub"/>' in client.get("/rss.xml").data.decode()
        assert json.loads(client.get("/feed.json").data)["hubs"] == [{"type": "WebSub", "url": hub_url}]

        write_post(source, "tech/new.md", post_text(title="Fresh", categories=("编程", "开源", "资讯"), date="2021-03-09 10:00:00"))
        assert app.extensions["feeds.live"].refresh()
        assert app.extensions["feeds.websub"].done.wait(10)
        paths = {unquote(urlsplit(u).path) for u in received}
        assert {"/atom.xml", "/rss.xml", "/feed.json", "/categories/编程/开源/资讯/atom.xml", "/categories/编程/atom.xml"} <= paths
        assert not any(p.startswith("/categories/金融") for p in paths)
    finally:
        hub.shutdown()


def test_feeds_offer_an_xsl_view_for_browsers(client):
    atom = client.get("/atom.xml").data
    assert b'<?xml-stylesheet type="text/xsl" href="http://127.0.0.1:8000/feed.xsl"?>' in atom
    xsl = client.get("/feed.xsl")
    assert xsl.status_code == 200 and xsl.headers["Content-Type"] == "text/xsl; charset=utf-8"
    from lxml import etree

    transform = etree.XSLT(etree.fromstring(xsl.data))
    for path in ("/atom.xml", "/rss.xml"):
        page = str(transform(etree.fromstring(client.get(path).data)))
        assert "To subscribe" in page and "Rust news" in page and f"http://127.0.0.1:8000{path}" in page


def test_rss_update_period_matches_max_age(client):
    from lxml import etree

    channel = etree.fromstring(client.get("/rss.xml").data).find("channel")
    sy = "{http://purl.org/rss/1.0/modules/syndication/}"
    assert channel.findtext("ttl") == "2"
    assert channel.findtext(sy + "updatePeriod") == "hourly" and channel.findtext(sy + "updateFrequency") == "30"
