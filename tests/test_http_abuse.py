"""Abusive requests get 4xx or a correct 200/304, never a 500, and the server keeps serving.

Runs against a server worker's WSGI app (the tree built first, as `feeds
serve` does) and against a real `feeds serve` (granian) on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feeds.build import plan_site, run_pipeline, write_tree
from feeds.served import SiteFiles, link_target
from feeds.web import create_app

from conftest import make_config, post_text, write_post

TRAVERSALS = [
    "/../../etc/passwd",
    "/..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/categories/../../../etc/passwd",
    "/categories/%2e%2e/%2e%2e/config.toml",
    "/posts/..%2F..%2Fconfig.toml/",
    "/posts/%252e%252e/%252e%252e/etc/passwd",
    "/tags/..\\..\\config.toml",
    "/authors/%00/atom.xml",
    "/categories/%ff%fe/atom.xml",
    "/.public.builds/",
    "//etc/passwd",
    "/posts/a/../../../../config.toml",
    "/static/../config.toml",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
]


@pytest.fixture
def site(tmp_path):
    source = tmp_path / "posts"
    for i in range(5):
        write_post(source, f"g/p{i}.md", post_text(title=f"post {i}", date=f"2021-03-0{i + 1} 10:00:00"))
    (tmp_path / "secret.txt").write_text("do not serve me")
    return make_config(source, tmp_path, server={"reload_seconds": 0})


@pytest.fixture
def client(site):
    write_tree(site.output.dir, plan_site(site, run_pipeline(site)))
    return create_app(site, build=False, site=SiteFiles(site.output.dir, check_interval=0)).test_client()


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404_and_never_leaks(client, path):
    response = client.get(path)
    assert response.status_code in (301, 308, 400, 404), (path, response.status_code)
    assert b"do not serve me" not in response.data and b"root:" not in response.data


def test_planted_files_and_links_in_the_build_folder_are_not_served(client, site, tmp_path):
    """Only manifest paths are served, never through a symlink, and only bytes that match their digest."""
    folder = Path(link_target(site.output.dir))
    (folder / "secret.txt").symlink_to(tmp_path / "secret.txt")
    assert client.get("/secret.txt").status_code == 404
    target = folder / "rss.xml"
    target.unlink()
    target.symlink_to(tmp_path / "secret.txt")
    response = client.get("/rss.xml")
    assert response.status_code == 503 and b"do not serve me" not in response.data
    assert client.get("/atom.xml").status_code == 200


def test_overlong_path_and_query(client):
    assert client.get("/" + "a" * 20000).status_code == 404
    assert client.get("/atom.xml?filter=" + "x" * 20000).status_code == 400
    assert client.get("/atom.xml?" + "&".join(f"p{i}=1" for i in range(2000))).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": "\x00\x01"},
        {"If-None-Match": '"' * 5000},
        {"If-None-Match": "*, W/"},
        {"If-Modified-Since": "Mon, 99 Abc 99999 99:99:99 GMT"},
        {"If-Modified-Since": "9" * 500},
        {"If-Modified-Since": "Sat, 01 Jan 0001 00:00:00 GMT"},
        {"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"Accept-Encoding": "gzip;q=abc, br;q=, *;q=-1"},
        {"Accept-Encoding": "," * 3000},
        {"Range": "bytes=999999-"},
        {"Host": "evil.example:99999"},
    ],
)
def test_malformed_headers(client, headers):
    response = client.get("/atom.xml", headers=headers)
    assert response.status_code in (200, 304), response.status_code
    assert b"evil.example" not in response.data


@pytest.mark.parametrize(
    "query",
    ["limit=1001", "limit=1e3", "limit= 5", "limit=5&limit=6", "brief=99999", "brief=-3", "filter=a&filter=b", "filterout=%00", "limit=%FF"],
)
def test_out_of_range_and_repeated_parameters(client, query):
    response = client.get("/rss.xml?" + query)
    assert response.status_code in (200, 400), (query, response.status_code)


def test_methods(client):
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/atom.xml").status_code == 405
    assert client.options("/atom.xml").status_code in (200, 204, 405)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw(port: int, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def live_server(site, tmp_path):
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[site]\ntitle = "T"\nurl = "http://127.0.0.1:8000"\n[source]\ndir = "{site.source.dir}"\n'
        f'[output]\ndir = "{tmp_path / "public"}"\n[build]\ncache_dir = "{tmp_path / "cache"}"\n',
        encoding="utf-8",
    )
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # a file, not a pipe nobody drains
    proc = subprocess.Popen(
        [sys.executable, "-m", "feeds", "serve", "--config", str(config_file), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _raw(port, b"GET /atom.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("feeds serve did not start: " + (tmp_path / "serve.log").read_text(errors="replace")[-2000:])
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_raw_requests_against_the_real_server(live_server):
    port = live_server
    for path in TRAVERSALS + ["/" + "b" * 10000, "/atom.xml?" + "q" * 10000]:
        raw = _raw(port, f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode("latin-1"))
        status = raw.split(b"\r\n", 1)[0]
        assert status and not status.startswith(b"HTTP/1.1 5"), (path, status)
        assert b"do not serve me" not in raw
    for junk in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\r\n\r\n", b"GET /atom.xml HTTP/1.1\r\nHost: x\r\nIf-None-Match: \xff\xfe\r\nConnection: close\r\n\r\n"):
        raw = _raw(port, junk)
        assert not raw.startswith(b"HTTP/1.1 5"), (junk, raw[:60])
    # still serving, with absolute URLs from the config, not the Host header
    raw = _raw(port, b"GET /atom.xml HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and b"evil.example" not in raw and b"http://127.0.0.1:8000/atom.xml" in raw
