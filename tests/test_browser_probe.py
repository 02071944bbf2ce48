"""Every article page built from the XSS vectors, loaded in headless Chromium.

tests/xss/vectors.toml becomes two sites, one post per vector: the shipped
sanitize policy, and one with `[sanitize] iframe_hosts` for the embed
vectors. Each site is served by feeds' own app (`create_app`, werkzeug on
127.0.0.1, ephemeral port) and every article page (/posts/<id>/) is loaded
twice:

* ``published``: exactly as feeds serves it (CSP header and meta tag);
* ``no-csp``: the same bytes with the CSP meta tag removed, served without
  the header. The CSP (``default-src 'none'``) blocks inline script on its
  own, so only this mode shows that the *sanitizer* stops the payloads;
  the published mode shows what a reader actually gets, and any CSP
  violation there also counts as a finding.

The probe (tests/browser/cdp.py, probe.js, audit.js; Chromium driven over
--remote-debugging-pipe, no third-party package) records for each page:
JS dialogs, any script compiled (Debugger.scriptParsed; inline handlers,
javascript: URLs and eval all compile one), calls of alert/confirm/prompt/
eval/Function/... and CSP violations seen by a probe injected before any
page script, every network request other than the page itself, images,
<video>/<audio> media (allowed content: the policy keeps those elements and
the CSP allows media-src http(s)), frames to the allowed embed hosts and the
browser's own favicon, a navigation away from the page, and an audit of the
browser's DOM (event-handler attributes, non-http(s) URLs, elements outside
the allowlist in the article body; latent XSS that would need a click).
Every one of them must be empty. Chromium resolves no host but 127.0.0.1.

Control tests prove that each channel can fail: a hand-written unsafe page
(not produced by feeds, no CSP) and a feeds page with a payload spliced into
its body must be detected.

Skips when Chromium is not installed, unless the CI environment variable is
set (then it fails). Set CHROMIUM_BIN to choose the binary, and
FEEDS_SANITIZE_ENGINE=nh3 to build the sites with the nh3 engine.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import threading
import tomllib
from pathlib import Path

import pytest

from feeds.model import ERROR
from feeds.slug import post_path
from feeds.web import create_app

from conftest import make_config, post_text, write_post

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
IFRAME_HOSTS = ("www.youtube.com",)
POLICY_SECTIONS = {"default": {}, "iframes": {"iframe_hosts": list(IFRAME_HOSTS)}}
# the engine the sites are built with; FEEDS_SANITIZE_ENGINE=nh3 runs the same pages on nh3
ENGINE = os.environ.get("FEEDS_SANITIZE_ENGINE", "bleach")
MODES = ("published", "no-csp")
TABS = 6  # pages loaded in parallel, one tab each (~35 s for ~390 loads on 2 cores)
CSP_META = re.compile(rb'<meta http-equiv="Content-Security-Policy" content="[^"]*">\n?')


def _helper(name: str):
    spec = importlib.util.spec_from_file_location(f"_feeds_browser_{name}", HERE / "browser" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdp = _helper("cdp")
serve = _helper("serve")

with open(HERE / "xss" / "vectors.toml", "rb") as _handle:
    VECTORS = tomllib.load(_handle)["vector"]
with open(HERE / "xss" / "allowlist.toml", "rb") as _handle:
    _ALLOWLIST = tomllib.load(_handle)
BODY_TAGS = {"default": _ALLOWLIST["tags"].split(), "iframes": _ALLOWLIST["tags"].split() + _ALLOWLIST["embed_tags"].split()}
FRAME_HOSTS = {"default": (), "iframes": IFRAME_HOSTS}


def strip_csp(page: bytes, where: str = "page") -> bytes:
    """The page without the template's CSP meta tag (the one in <head>)."""
    head, sep, rest = page.partition(b"</head>")
    head, count = CSP_META.subn(b"", head)
    assert sep and count == 1, f"{where}: expected exactly one CSP meta tag in <head>, found {count}"
    return head + sep + rest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def chromium():
    binary = cdp.find_chromium()
    if binary is None:
        message = "headless Chromium not found (apt-get install chromium, or set CHROMIUM_BIN)"
        if _in_ci():
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    browser = cdp.Browser(binary)
    yield browser
    browser.close()


class Sites:
    """Both sites, their servers, and the list of pages to load."""

    def __init__(self, tmp_path_factory):
        self.servers: list = []
        self.static = serve.StaticPages()  # no-csp copies and control pages
        self.static_server = self._server(self.static)
        self.jobs: list[tuple[str, str, str, str]] = []  # (mode, policy, vector name, url)
        self.published: dict[str, bytes] = {}  # vector name → page bytes as served
        self.article_pages = 0
        try:
            for policy, section in POLICY_SECTIONS.items():
                self._build(policy, section, tmp_path_factory.mktemp(f"site-{policy}"))
        except BaseException:
            self.close()
            raise

    def _server(self, app=None):
        server = serve.ThreadedServer(app)
        self.servers.append(server)
        return server

    def _build(self, policy, section, tmp: Path) -> None:
        vectors = {v["name"]: v for v in VECTORS if v.get("policy", "default") == policy}
        posts = tmp / "posts"
        for name, vector in vectors.items():
            write_post(posts, f"{name}.md", post_text(title=name, body=vector["html"], id=name).encode("utf-8"))
        server = self._server()
        config = make_config(posts, tmp, site={"url": server.url}, sanitize={"engine": ENGINE, **section})
        app = create_app(config, start_reloader=False)
        server.app = app
        snapshot = app.extensions["feeds.live"].snapshot
        errors = [str(p) for p in snapshot.state.problems if p.severity == ERROR]
        assert not errors, errors
        articles = {a.id: a for a in snapshot.state.catalog.articles}
        assert set(articles) == set(vectors), "every vector must become exactly one article"
        pages = sorted(p for p in snapshot.files if p.startswith("/posts/") and p.endswith("/index.html"))
        self.article_pages += len(pages)
        by_page = {post_path(a.id) + "index.html": a.id for a in articles.values()}
        assert set(pages) == set(by_page), "an article page that is not a vector's, or a vector without its page"
        for page in pages:
            name = by_page[page]
            body = snapshot.files[page].body
            self.published[name] = body
            stripped = strip_csp(body, page)
            nocsp_path = f"/nocsp/{policy}{page}"
            self.static.pages[nocsp_path] = (stripped, "text/html; charset=utf-8")
            self.jobs.append(("published", policy, name, server.url + page[: -len("index.html")]))
            self.jobs.append(("no-csp", policy, name, self.static_server.url + nocsp_path))

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    built = Sites(tmp_path_factory)
    yield built
    built.close()


@pytest.fixture(scope="module")
def findings(chromium, sites):
    """{(mode, vector name): findings or the exception}, loaded in TABS tabs."""
    jobs: queue.Queue = queue.Queue()
    for job in sites.jobs:
        jobs.put(job)
    results: dict = {}

    def work() -> None:
        try:
            probe = cdp.XssProbe(chromium)
        except Exception as exc:  # reported on every page this tab would have loaded
            probe, failure = None, exc
        while True:
            try:
                mode, policy, name, url = jobs.get_nowait()
            except queue.Empty:
                return
            if probe is None:
                results[(mode, name)] = failure
                continue
            try:
                results[(mode, name)] = probe.load(url, allowed_tags=BODY_TAGS[policy], frame_hosts=FRAME_HOSTS[policy])
            except Exception as exc:
                results[(mode, name)] = exc

    threads = [threading.Thread(target=work, name=f"probe-tab-{i}") for i in range(TABS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def probe(chromium):
    return cdp.XssProbe(chromium)


# ------------------------------------------------------------------ the article pages


def _cases():
    for mode in MODES:
        for vector in VECTORS:
            marks = []
            if vector.get("xfail"):
                marks.append(pytest.mark.xfail(strict=True, reason=vector["xfail"]))
            yield pytest.param(mode, vector["name"], id=f"{mode}-{vector['name']}", marks=marks)


def _report(findings: dict) -> str:
    return "\n".join(f"  {kind}: {item}" for kind, items in findings.items() if isinstance(items, list) for item in items)


def test_every_article_page_is_loaded(sites, findings):
    assert sites.article_pages == len(VECTORS)
    assert len(sites.jobs) == len(MODES) * len(VECTORS)
    assert all((mode, name) in findings for mode, _policy, name, _url in sites.jobs)


@pytest.mark.parametrize(("mode", "name"), list(_cases()))
def test_article_page_is_inert(findings, mode, name):
    result = findings[(mode, name)]
    if isinstance(result, Exception):
        raise result
    assert cdp.clean(result), f"{mode} article page of vector {name!r} is not inert:\n{_report(result)}"


# ------------------------------------------------------------------ controls: the probe can fail

UNSAFE_PAGE = b'<!DOCTYPE html><html><head><title>control</title></head><body><article><div class="body"><p>hi</p><img src=x onerror=alert(1)></div></article></body></html>'
REQUESTS_PAGE = b'<!DOCTYPE html><html><head><link rel="stylesheet" href="/evil.css"><script src="/evil.js"></script></head><body><article><div class="body"><p>hi</p></div></article></body></html>'
REFRESH_PAGE = b'<!DOCTYPE html><html><head><meta http-equiv="refresh" content="0;url=/elsewhere"></head><body><article><div class="body"><p>hi</p></div></article></body></html>'
PAYLOAD = b'<img src=x onerror=alert(1)>'


def _serve(sites, path: str, body: bytes) -> str:
    sites.static.pages[path] = (body, "text/html; charset=utf-8")
    return sites.static_server.url + path


def _splice(page: bytes) -> bytes:
    spliced, count = re.subn(rb'(<div class="body">)', lambda m: m.group(1) + PAYLOAD, page, count=1)
    assert count == 1, "the article template has no <div class=\"body\"> to splice into"
    return spliced


def test_probe_detects_unsafe_control_page(sites, probe):
    found = probe.load(_serve(sites, "/control/unsafe.html", UNSAFE_PAGE), allowed_tags=BODY_TAGS["default"])
    assert found["dialogs"] and "1" in found["dialogs"][0], found
    assert found["scripts"], found
    assert any(c.startswith("alert(1)") for c in found["calls"]), found
    assert any("onerror" in a for a in found["audit"]), found
    assert not cdp.clean(found)


def test_probe_detects_requests(sites, probe):
    found = probe.load(_serve(sites, "/control/requests.html", REQUESTS_PAGE), allowed_tags=BODY_TAGS["default"])
    kinds = {r.split()[0] for r in found["requests"]}
    assert {"Stylesheet", "Script"} <= kinds, found
    assert any("<script>" in a for a in found["audit"]), found


def test_probe_detects_navigation(sites, probe):
    found = probe.load(_serve(sites, "/control/refresh.html", REFRESH_PAGE), allowed_tags=BODY_TAGS["default"])
    assert any("/elsewhere" in r for r in found["requests"]), found
    assert any("/elsewhere" in n for n in found["navigations"]), found


def test_probe_detects_payload_in_feeds_page_without_csp(sites, probe):
    """The no-csp mode on a real feeds page would catch a sanitizer failure."""
    name = next(v["name"] for v in VECTORS if v.get("policy", "default") == "default")
    page = _splice(strip_csp(sites.published[name]))
    found = probe.load(_serve(sites, "/control/spliced-nocsp.html", page), allowed_tags=BODY_TAGS["default"])
    assert found["dialogs"] and found["scripts"], found
    assert any("onerror" in a for a in found["audit"]), found


def test_probe_detects_payload_blocked_by_csp(sites, probe):
    """The published mode would catch it too: as a CSP violation, without running it."""
    name = next(v["name"] for v in VECTORS if v.get("policy", "default") == "default")
    page = _splice(sites.published[name])
    found = probe.load(_serve(sites, "/control/spliced-csp.html", page), allowed_tags=BODY_TAGS["default"])
    assert not found["dialogs"] and not found["scripts"], f"the CSP did not block the payload: {found}"
    assert any(c.startswith("CSP violation") for c in found["calls"]), found
    assert any("onerror" in a for a in found["audit"]), found

