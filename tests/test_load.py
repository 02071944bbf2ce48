"""Load: a real `feeds serve` under 100 keep-alive connections while the posts change.

The issue: "With 10,000 posts, hold 100 concurrent connections on the feeds
for 30 s while another process rewrites, adds and deletes posts every
100 ms: zero failed or non-2xx/304 responses, every sampled body parses and
is a complete feed, memory stays flat."

What this test does (FEEDS_LOAD_POSTS, default 10000; FEEDS_LOAD_SECONDS,
default 30; FEEDS_LOAD_CONNECTIONS, default 100):

1. writes a synthetic mirror (8 groups x 4 sources x 3 feeds, ~1.5 KB
   bodies with ads, lazy images and scripts; tests/load/load_corpus.py),
   warms the cache with `python -m feeds build`, starts `python -m feeds
   serve` (its foreground build, then granian with one worker serving the
   tree from disk, and the serve process staying as the one builder;
   `reload_seconds = 1`) on a free 127.0.0.1 port and waits for /atom.xml
   to answer 200;
2. runs `tests/load/load_churn.py` in its own process: every 100 ms it
   rewrites a post in place (new title, newer date), adds one or deletes
   one, in rotation, logging every action;
3. meanwhile CONNECTIONS threads each hold one keep-alive
   `http.client.HTTPConnection` and cycle over site, category (percent-
   encoded, all three levels), tag and author feeds in Atom/RSS/JSON, the
   OPML, the index, a category page, a post page and a query-filtered feed,
   half of them with `Accept-Encoding: gzip`, every second round with the
   `If-None-Match` of the previous answer. Any exception, timeout
   (REQUEST_TIMEOUT), dropped connection, status other than 200/304, or a
   304 to a request without a validator is a failure. Every uncompressed
   body must end with its closing tag; one 200 body in 50 is decompressed
   (when gzip) and parsed: XML with lxml (Atom `feed` or RSS `rss/channel`
   with entries, ids unique, newest first; site-wide feeds exactly
   `[feeds] items` entries), JSON Feed with json.loads and `items`, OPML
   with outlines;
4. samples VmRSS every second of the builder (the `feeds serve` process),
   of granian's main process and of each worker (other processes below the
   builder, e.g. the sanitizing pool a rebuild forks when >= 48 posts
   changed, are reported by PSS, not summed: their RSS is mostly pages
   shared with the builder);
5. after the churn stops, waits (up to SETTLE_TIMEOUT) for the server to
   publish exactly the newest `items` posts the churn log says exist:
   nothing stale, nothing lost. It also notes when /atom.xml changed
   (each reload swapped in), to show how far the live site lags.

"Memory stays flat" is checked per role, after warm-up: the highest RSS
in the last third of the load window may exceed the highest in the first
third by at most WORKER_SLACK_MB for the server (granian's main process
plus its worker) and BUILDER_SLACK_MB for the builder. The first third
already holds several complete rebuilds and the worker's hot cache with
the URLs the clients cycle over, so what is left is growth: a leak, or a
cache that keeps every version it ever served. Every worker must also stay
under WORKER_LIMIT_MB (the issue's 300 MB) the whole time.

A one-line summary is printed (see it with `pytest -s`) and written to
<tmp>/load-summary.txt.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent / "load"))
import load_corpus  # noqa: E402

from feeds.slug import post_path, url_quote  # noqa: E402

POSTS = int(os.environ.get("FEEDS_LOAD_POSTS", "10000"))
SECONDS = float(os.environ.get("FEEDS_LOAD_SECONDS", "30"))
CONNECTIONS = int(os.environ.get("FEEDS_LOAD_CONNECTIONS", "100"))
CHURN_INTERVAL = 0.1
ITEMS = 50
REQUEST_TIMEOUT = 15.0
SAMPLE_EVERY = 50
STARTUP_TIMEOUT = 240.0
SETTLE_TIMEOUT = 90.0
# A worker briefly holds two manifests while it switches builds (~10 MB at
# 10k posts) and its hot cache turns over as feeds change; the builder
# holds the previous and the next catalog during a rebuild.
WORKER_SLACK_MB, BUILDER_SLACK_MB, WORKER_LIMIT_MB = 32, 48, 300

ATOM = "{http://www.w3.org/2005/Atom}"
CLOSING = {"atom": b"</feed>", "rss": b"</rss>", "opml": b"</opml>", "html": b"</html>", "json": b"}"}
CHURN_SCRIPT = Path(__file__).resolve().parent / "load" / "load_churn.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --- the server's memory ---------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return out


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class MemorySampler(threading.Thread):
    """VmRSS every second of the builder (`feeds serve` itself), granian's main process and its workers.

    Other processes below the builder (the sanitizing pool a rebuild forks
    when many posts changed) are counted apart, by PSS: a forked process's
    RSS is mostly pages it shares with the builder.
    """

    def __init__(self, pid: int, every: float = 1.0):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.every = pid, every
        # (t, builder KB, server KB = granian main + workers, {worker pid: KB})
        self.samples: list[tuple[float, int, int, dict[int, int]]] = []
        self.helpers_max = (0, 0)  # (processes, PSS KB) at the worst sample
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            builder = _rss_kb(self.pid) or 0
            server = 0
            workers: dict[int, int] = {}
            transient = []
            for child in _children(self.pid):
                if "feeds.web" in _cmdline(child):
                    server += _rss_kb(child) or 0
                    for worker in _children(child):
                        kb = _rss_kb(worker)
                        if kb is not None:
                            workers[worker] = kb
                            server += kb
                else:
                    todo = [child]
                    while todo:
                        q = todo.pop()
                        transient.append(_pss_kb(q))
                        todo += _children(q)
            if len(transient) > self.helpers_max[0] or sum(transient) > self.helpers_max[1]:
                self.helpers_max = (max(len(transient), self.helpers_max[0]), max(sum(transient), self.helpers_max[1]))
            self.samples.append((time.monotonic() - start, builder, server, workers))
            self.stop.wait(self.every)


class SwapWatcher(threading.Thread):
    """Notes when the served /atom.xml changes (ETag), i.e. when a reload was swapped in."""

    def __init__(self, port: int, every: float = 0.25):
        super().__init__(name="swap-watcher", daemon=True)
        self.port, self.every = port, every
        self.swaps: list[float] = []
        self.stop = threading.Event()
        self.start_time = time.monotonic()

    def run(self) -> None:
        last = None
        while not self.stop.is_set():
            try:
                status, headers, _ = _get(self.port, "/atom.xml", timeout=REQUEST_TIMEOUT)
            except (OSError, http.client.HTTPException):
                status, headers = 0, {}
            etag = headers.get("etag") if status == 200 else None
            if etag and etag != last:
                if last is not None:
                    self.swaps.append(time.monotonic() - self.start_time)
                last = etag
            self.stop.wait(self.every)


# --- checking bodies --------------------------------------------------------


def _kind(content_type: str) -> str:
    for marker, kind in (("atom", "atom"), ("rss", "rss"), ("feed+json", "json"), ("opml", "opml"), ("html", "html")):
        if marker in content_type:
            return kind
    return "other"


def _newest_first(dates: list[datetime], what: str) -> str | None:
    for a, b in zip(dates, dates[1:]):
        if a < b:
            return f"{what}: not newest first ({a} before {b})"
    return None


def expected_entries(path: str) -> int | None:
    """Entries a site-wide feed must have (the posts far outnumber `items`); None: any number >= 1."""
    if POSTS < 2 * ITEMS:
        return None
    if path in ("/atom.xml", "/rss.xml", "/feed.json"):
        return ITEMS
    if path == "/atom.xml?limit=10":
        return 10
    return None


def check_body(kind: str, body: bytes, exact: int | None) -> str | None:
    """None when `body` is a complete document of its kind, else what is wrong."""
    try:
        if kind == "atom":
            root = etree.fromstring(body)
            if root.tag != ATOM + "feed":
                return f"atom root is {root.tag}"
            entries = root.findall(ATOM + "entry")
            ids = [e.findtext(ATOM + "id") for e in entries]
            if not entries or None in ids or any(e.findtext(ATOM + "title") is None for e in entries):
                return f"atom: {len(entries)} entries, or an entry without id/title"
            if len(set(ids)) != len(ids):
                return "atom: duplicate entry ids"
            if exact is not None and len(entries) != exact:
                return f"atom: {len(entries)} entries, expected {exact}"
            return _newest_first([datetime.fromisoformat(e.findtext(ATOM + "published")) for e in entries], "atom")
        if kind == "rss":
            root = etree.fromstring(body)
            channel = root.find("channel")
            if root.tag != "rss" or channel is None:
                return f"rss root is {root.tag}, channel {channel is not None}"
            items = channel.findall("item")
            guids = [i.findtext("guid") for i in items]
            if not items or None in guids or len(set(guids)) != len(guids):
                return f"rss: {len(items)} items, or missing/duplicate guids"
            if exact is not None and len(items) != exact:
                return f"rss: {len(items)} items, expected {exact}"
            return _newest_first([parsedate_to_datetime(i.findtext("pubDate")) for i in items], "rss")
        if kind == "json":
            doc = json.loads(body)
            items = doc.get("items")
            if not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/1") or not items:
                return f"json feed: version {doc.get('version')!r}, {len(items or [])} items"
            ids = [i.get("id") for i in items]
            if None in ids or len(set(ids)) != len(ids):
                return "json feed: missing/duplicate ids"
            if exact is not None and len(items) != exact:
                return f"json feed: {len(items)} items, expected {exact}"
            return _newest_first([datetime.fromisoformat(i["date_published"]) for i in items], "json feed")
        if kind == "opml":
            root = etree.fromstring(body)
            if root.tag != "opml" or not root.findall(".//outline[@xmlUrl]"):
                return "opml: wrong root or no feed outlines"
            return None
        if kind == "html":
            return None if b"<html" in body[:500] and body.rstrip().endswith(b"</html>") else "html: incomplete page"
    except Exception as exc:  # noqa: BLE001 - any parse error is the finding
        return f"{kind}: {type(exc).__name__}: {exc}"
    return f"unexpected kind {kind}"


# --- the load ---------------------------------------------------------------


class Load:
    """Shared counters of the client threads (one lock, cheap updates)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.checked: Counter = Counter()
        self.failures: list[str] = []
        self.failure_count = 0
        self.connects = 0
        self.server_closes = 0
        self.exceptions = 0
        self.latencies: list[float] = []

    def fail(self, message: str) -> None:
        with self.lock:
            self.failure_count += 1
            if len(self.failures) < 30:
                self.failures.append(message)


def client(index: int, port: int, urls: list[tuple[str, str]], deadline: float, load: Load) -> None:
    conn: http.client.HTTPConnection | None = None
    etags: dict[tuple[str, bool], str] = {}
    statuses: Counter = Counter()
    checked: Counter = Counter()
    latencies: list[float] = []
    connects = closes = ok200 = exceptions = 0
    n = index * 7  # every thread starts at a different URL
    try:
        while time.monotonic() < deadline:
            path, kind = urls[n % len(urls)]
            round_ = n // len(urls)
            n += 1
            use_gzip = (round_ // 2 + index) % 2 == 0  # two rounds with, two without
            headers = {"Accept-Encoding": "gzip" if use_gzip else "identity"}
            validator = etags.get((path, use_gzip)) if round_ % 2 else None  # the 2nd of each pair
            if validator:
                headers["If-None-Match"] = validator
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
                    connects += 1
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except Exception as exc:  # noqa: BLE001
                exceptions += 1
                load.fail(f"{path}: {type(exc).__name__}: {exc} after {time.perf_counter() - started:.2f}s")
                if conn is not None:
                    conn.close()
                conn = None
                continue
            latencies.append(time.perf_counter() - started)
            statuses[resp.status] += 1
            if resp.will_close:
                closes += 1
                conn.close()
                conn = None
            if resp.status == 304:
                if not validator:
                    load.fail(f"{path}: 304 without a validator")
                continue
            if resp.status != 200:
                load.fail(f"{path}: status {resp.status}: {body[:200]!r}")
                continue
            etag = resp.getheader("ETag")
            if etag:
                etags[(path, use_gzip)] = etag
            encoding = resp.getheader("Content-Encoding")
            real_kind = _kind(resp.getheader("Content-Type", ""))
            if real_kind != kind:
                load.fail(f"{path}: Content-Type {resp.getheader('Content-Type')!r}, expected {kind}")
            if encoding is None and not body.rstrip().endswith(CLOSING.get(kind, b"")):
                load.fail(f"{path}: body of {len(body)} bytes does not end with {CLOSING.get(kind)!r}: ...{body[-80:]!r}")
            ok200 += 1
            if ok200 % SAMPLE_EVERY == index % SAMPLE_EVERY:
                if encoding == "gzip":
                    try:
                        body = gzip.decompress(body)
                    except Exception as exc:  # noqa: BLE001
                        load.fail(f"{path}: gzip body does not decompress: {exc}")
                        continue
                    checked["gzip"] += 1
                elif encoding is not None:
                    load.fail(f"{path}: unexpected Content-Encoding {encoding}")
                    continue
                problem = check_body(kind, body, expected_entries(path))
                checked[kind] += 1
                if problem:
                    load.fail(f"{path}: {problem}")
    finally:
        if conn is not None:
            conn.close()
        with load.lock:
            load.statuses.update(statuses)
            load.checked.update(checked)
            load.connects += connects
            load.server_closes += closes
            load.exceptions += exceptions
            load.latencies.extend(latencies)


def pick_urls(port: int) -> list[tuple[str, str]]:
    """(path, kind): site feeds, category feeds of every depth, tag and author feeds, pages."""
    status, _, body = _get(port, "/opml.xml")
    assert status == 200, status
    feeds: list[str] = []
    for outline in etree.fromstring(body).iter("outline"):
        url = outline.get("xmlUrl")
        if url:
            parts = urlsplit(url)
            feeds.append(parts.path)
    kinds = {"atom.xml": "atom", "rss.xml": "rss", "feed.json": "json"}
    atom_paths = sorted({p for p in feeds if p.endswith("/atom.xml")})
    category = [p for p in atom_paths if p.startswith("/categories/")]
    by_depth: dict[int, list[str]] = {}
    for p in category:
        by_depth.setdefault(p.count("/") - 2, []).append(p)
    chosen = []
    for depth in sorted(by_depth):
        paths = by_depth[depth]
        chosen += [paths[0], paths[len(paths) // 2], paths[-1]]
    # tags and authors are not in the OPML: derive them like the site does
    chosen += [url_quote("/tags/load/atom.xml"), url_quote("/tags/标签7/atom.xml"), url_quote("/authors/it-之家/atom.xml")]
    urls: list[tuple[str, str]] = []
    for base in ["/atom.xml", *dict.fromkeys(chosen)]:
        stem = base[: -len("atom.xml")]
        for name, kind in kinds.items():
            urls.append((stem + name, kind))
    first_category = category[0][: -len("atom.xml")] if category else "/"
    urls += [
        ("/opml.xml", "opml"),
        ("/", "html"),
        (first_category, "html"),
        (url_quote(post_path(load_corpus.original_rel(3)[:-3])), "html"),
        ("/atom.xml?limit=10", "atom"),
        ("/feed.json?filter=" + quote("Churn|Load"), "json"),
    ]
    for path, kind in urls:
        status, headers, _ = _get(port, path)
        assert status == 200 and _kind(headers.get("content-type", "")) == kind, (path, status, headers.get("content-type"))
    return urls


def expected_site(log_path: Path) -> list[str]:
    """Titles of the newest ITEMS posts after the churn, newest first."""
    posts = {load_corpus.original_rel(i): (load_corpus.iso(load_corpus.original_date(i)), load_corpus.original_title(i)) for i in range(POSTS)}
    for line in log_path.read_text(encoding="utf-8").splitlines():
        action = json.loads(line)
        if action["op"] == "delete":
            posts.pop(action["rel"], None)
        else:
            posts[action["rel"]] = (action["date"], action["title"])
    return [title for _, title in sorted(posts.values(), reverse=True)[:ITEMS]]


def _titles(body: bytes) -> list[str]:
    return [e.findtext(ATOM + "title") for e in etree.fromstring(body).findall(ATOM + "entry")]


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.mark.slow
def test_load_with_churn(tmp_path):
    source = tmp_path / "posts"
    t0 = time.monotonic()
    load_corpus.write_corpus(source, POSTS)
    write_seconds = time.monotonic() - t0
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        "\n".join(
            [
                '[site]\ntitle = "Load"\nurl = "http://127.0.0.1:8000"',
                f'[source]\ndir = "{source}"',
                f'[output]\ndir = "{tmp_path / "public"}"',
                f'[build]\ncache_dir = "{tmp_path / "cache"}"\nworkers = 0',
                f"[feeds]\nitems = {ITEMS}",
                "[server]\nreload_seconds = 1\nworkers = 1",
                "",
            ]
        ),
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("FEEDS_CONFIG", None)

    t0 = time.monotonic()
    with open(tmp_path / "build.log", "wb") as log:
        built = subprocess.run([sys.executable, "-m", "feeds", "build", "--config", str(config_file)], stdout=log, stderr=subprocess.STDOUT, env=env, timeout=600)
    build_seconds = time.monotonic() - t0
    assert built.returncode == 0, (tmp_path / "build.log").read_text(errors="replace")[-3000:]

    port = _free_port()
    serve_log = open(tmp_path / "serve.log", "wb")
    churn_out = open(tmp_path / "churn.out", "wb")
    server: subprocess.Popen | None = None
    churn: subprocess.Popen | None = None
    sampler: MemorySampler | None = None
    watcher: SwapWatcher | None = None
    summary_file = tmp_path / "load-summary.txt"
    try:
        t0 = time.monotonic()
        server = subprocess.Popen(
            [sys.executable, "-m", "feeds", "serve", "--config", str(config_file), "--port", str(port)],
            stdout=serve_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        while True:
            if server.poll() is not None or time.monotonic() - t0 > STARTUP_TIMEOUT:
                pytest.fail(f"feeds serve did not start within {STARTUP_TIMEOUT}s: " + (tmp_path / "serve.log").read_text(errors="replace")[-3000:])
            try:
                if _get(port, "/atom.xml", timeout=5)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.25)
        startup_seconds = time.monotonic() - t0
        urls = pick_urls(port)

        churn_log = tmp_path / "churn.jsonl"
        sampler = MemorySampler(server.pid)
        sampler.start()
        watcher = SwapWatcher(port)
        watcher.start()
        load = Load()
        started = time.monotonic()
        churn = subprocess.Popen(
            [sys.executable, str(CHURN_SCRIPT), str(source), str(POSTS), str(SECONDS), str(CHURN_INTERVAL), str(churn_log)],
            stdout=churn_out,
            stderr=subprocess.STDOUT,
        )
        deadline = started + SECONDS
        threads = [threading.Thread(target=client, args=(i, port, urls, deadline, load), name=f"load-{i}") for i in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + SECONDS + 30)
        elapsed = time.monotonic() - started
        stuck = sum(t.is_alive() for t in threads)
        try:
            churn_rc = churn.wait(30)
        except subprocess.TimeoutExpired:
            churn_rc = None

        # nothing stale: once the churn stops, the site shows exactly what it left
        expected = expected_site(churn_log)
        settle_start = time.monotonic()
        shown: list[str] = []
        while time.monotonic() - settle_start < SETTLE_TIMEOUT:
            status, _, body = _get(port, "/atom.xml")
            shown = _titles(body) if status == 200 else []
            if shown == expected:
                break
            time.sleep(0.5)
        settle_seconds = time.monotonic() - settle_start
        watcher.stop.set()
        watcher.join(REQUEST_TIMEOUT + 5)
        sampler.stop.set()
        sampler.join(5)
        window = [s for s in sampler.samples if s[0] <= elapsed]
        after = f"builder {sampler.samples[-1][1] // 1024}, server {sampler.samples[-1][2] // 1024}" if sampler.samples else ""

        actions = Counter(json.loads(line)["op"] for line in churn_log.read_text(encoding="utf-8").splitlines())
        total = sum(load.statuses.values()) + load.exceptions  # answered + no answer
        lat = sorted(load.latencies) or [0.0]
        third = max(1, len(window) // 3)
        first_max = {role: max((s[role] for s in window[:third]), default=0) for role in (1, 2)}
        last_max = {role: max((s[role] for s in window[-third:]), default=0) for role in (1, 2)}
        worker_max = max((kb for s in window for kb in s[3].values()), default=0)
        rss_line = " ".join(f"{int(s[0])}s:{s[1] // 1024}/{s[2] // 1024}" for s in window[:: max(1, len(window) // 12)])
        pids = sorted({p for s in window for p in s[3]})
        per_pid = ", ".join(f"{p}: {window[0][3].get(p, 0) // 1024}->{window[-1][3].get(p, 0) // 1024}" for p in pids) if window else ""
        swaps = " ".join(f"{t:.1f}" for t in watcher.swaps)
        summary = (
            f"load: {POSTS} posts, {CONNECTIONS} conns, {elapsed:.1f}s: {total} requests ({total / elapsed:.0f}/s), "
            f"statuses {dict(sorted(load.statuses.items()))}, failures {load.failure_count} (no answer {load.exceptions}), "
            f"checked {dict(sorted(load.checked.items()))}, connects {load.connects}, server closes {load.server_closes}, "
            f"latency p50 {lat[len(lat) // 2] * 1000:.0f}ms p99 {lat[int(len(lat) * 0.99)] * 1000:.0f}ms max {lat[-1] * 1000:.0f}ms; "
            f"churn {dict(actions)} rc {churn_rc}; RSS MB builder first-third max {first_max[1] // 1024} last-third max {last_max[1] // 1024}, "
            f"server (granian main + worker) first-third max {first_max[2] // 1024} last-third max {last_max[2] // 1024}, worker max {worker_max // 1024} "
            f"(worker MB {per_pid}; t:builder/server MB {rss_line}; after settle {after}; other processes below the builder at most {sampler.helpers_max[0]}, PSS {sampler.helpers_max[1] // 1024} MB); /atom.xml swapped at t= {swaps} s; write {write_seconds:.1f}s build {build_seconds:.1f}s startup {startup_seconds:.1f}s "
            f"settle {settle_seconds:.1f}s"
        )
        print("\n" + summary)
        summary_file.write_text(summary + "\n" + "\n".join(load.failures) + "\n", encoding="utf-8")
        (tmp_path / "rss.tsv").write_text("".join(f"{t:.1f}\t{builder // 1024}\t{server // 1024}\t{workers}\n" for t, builder, server, workers in sampler.samples), encoding="utf-8")

        assert stuck == 0, f"{stuck} client threads still waiting"
        assert load.failure_count == 0, "\n".join([summary, *load.failures])
        assert set(load.statuses) <= {200, 304} and load.statuses[200] > 0, summary
        for kind in ("atom", "rss", "json", "opml", "gzip"):
            assert load.checked[kind] >= 1, f"no {kind} body was sampled: {summary}"
        assert churn_rc == 0 and actions["add"] and actions["delete"] and actions["rewrite"], summary
        assert shown == expected, f"after the churn /atom.xml still differs from the posts after {SETTLE_TIMEOUT}s: {summary}"
        assert len(window) >= 3, summary
        assert len(watcher.swaps) >= 2, f"the site was not rebuilt during the churn: {summary}"
        assert worker_max < WORKER_LIMIT_MB * 1024, f"a worker went over {WORKER_LIMIT_MB} MB: {summary}"
        assert last_max[2] - first_max[2] <= WORKER_SLACK_MB * 1024, f"server memory grew under churn: {summary}"
        assert last_max[1] - first_max[1] <= BUILDER_SLACK_MB * 1024, f"builder memory grew under churn: {summary}"
    finally:
        for background in (sampler, watcher):
            if background is not None:
                background.stop.set()
        _stop(churn)
        _stop(server)
        serve_log.close()
        churn_out.close()
