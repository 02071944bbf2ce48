"""The live server: the published tree, served from disk like nginx would.

Granian's workers run `app_from_env`, which never runs the pipeline: they
follow the `[output] dir` link to the current build, load its manifest and
serve files from the build folder (feeds/served.py). The one builder
process of `feeds serve` (feeds/builder.py) rebuilds the tree when posts
change and switches the link; a worker sees the new build within
`served.CHECK_INTERVAL`, and every response is the old build's file or the
new build's, whole, with the ETag of exactly those bytes.

Published files go through `StaticFastPath`, a plain WSGI layer in front of
Flask: a manifest lookup, headers from the manifest, bodies from a bounded
hot cache or the disk. Everything else (query-filtered feeds, 404 pages,
redirects, 405) is ordinary Flask.

`create_app(config)` called directly (tests, embedding) builds the tree in
this process first and can keep it current with a thread; see LiveSite.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import NamedTuple

from flask import Flask, Response, abort, request

from .config import Config
from .kinds import CONTENT_TYPES, PAGE_CSP
from .served import Build, Entry, SiteFiles

log = logging.getLogger("feeds.web")

CORS_KINDS = ("atom", "rss", "json", "opml", "xsl")
ATTEMPTS = 3  # reads of a file that changed under us before answering 503
ANSWERS_KEPT = 16384  # paths and answers a worker remembers per build (about 300 bytes each)
FILTERED_MEMO_BYTES = 8 * 1024 * 1024  # query results kept per worker; larger ones are not kept


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


@functools.lru_cache(maxsize=8192)
def file_headers(kind: str, last_modified: float | None, max_age: int) -> tuple[tuple[str, str], ...]:
    """Headers shared by a file's 200 and 304 answers (ETag and length aside)."""
    headers = [
        ("Content-Type", CONTENT_TYPES[kind]),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if kind in CORS_KINDS:
        headers.append(("Access-Control-Allow-Origin", "*"))
    if kind == "html":
        headers.append(("Content-Security-Policy", PAGE_CSP))
        headers.append(("Referrer-Policy", "no-referrer"))
    if last_modified is not None:
        headers.append(("Last-Modified", _http_date(datetime.fromtimestamp(last_modified, timezone.utc))))
    return tuple(headers)


def _etag_match(header: str, etags: tuple[str, ...]) -> str | None:
    """The first of `etags` that If-None-Match names (or etags[0] for `*`), else None."""
    header = header.strip()
    if header == "*":
        return etags[0]
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate in etags:
            return candidate
    return None


def _not_modified_since(header: str, last_modified: float | None) -> bool:
    if last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # RFC 9110: an invalid date is ignored
    if since is None:
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    try:
        return int(last_modified) <= since.timestamp()
    except (OverflowError, ValueError, OSError):
        return False


@functools.lru_cache(maxsize=256)
def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def decode_path(environ) -> str:
    # PEP 3333: PATH_INFO is the request's bytes decoded as latin-1
    raw = environ.get("PATH_INFO", "") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def serve_file(site: SiteFiles, build: Build, path: str, entry: Entry, environ, start_response, max_age: int):
    """Answer with one published file; None when its bytes are no longer in the build folder."""
    head_only = environ.get("REQUEST_METHOD") == "HEAD"
    last_modified = entry.last_modified
    headers = list(file_headers(entry.kind, last_modified, max_age))
    etags = (f'"{entry.digest}"', f'"{entry.digest}-gz"')
    wants_gzip = _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        matched = _etag_match(inm, etags[::-1] if wants_gzip else etags)
        if matched is not None:
            # answered from the manifest alone: no need to read the file
            headers.append(("ETag", matched))
            start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Type"])
            return [b""]
    item = site.read(build, path, entry)
    if item is None:
        return None
    payload = item.body
    gz = site.hot.gzipped(item) if wants_gzip else None
    etag = etags[1] if gz is not None else etags[0]
    headers.append(("ETag", etag))
    if inm is None:
        ims = environ.get("HTTP_IF_MODIFIED_SINCE")
        if ims is not None and _not_modified_since(ims, last_modified):
            start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Type"])
            return [b""]
    if gz is not None:
        payload = gz
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(payload))))
    if item.stored and len(build.answers) < ANSWERS_KEPT:
        build.answers[(path, wants_gzip)] = tuple(headers)
    start_response("200 OK", headers)
    return [b""] if head_only else [payload]


def _plain_get(site: SiteFiles, build: Build, raw_path: str, environ, start_response):
    """A plain GET (no validators, no query) of a file this build has answered before, from memory; None when it cannot be.

    serve_file worked everything out the first time and kept the headers;
    the body comes from the hot cache, so one evicted since is read and
    verified again by serve_file.
    """
    route = build.routes.get(raw_path)
    if route is None:
        return None
    gzipped = _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    headers = build.answers.get((route[0], gzipped))
    if headers is None:
        return None
    payload = site.hot.ready(route[1].digest, gzipped)
    if payload is None:
        return None
    start_response("200 OK", list(headers))
    return [payload]


class StaticFastPath:
    """WSGI middleware: published files straight from the build folder."""

    def __init__(self, site: SiteFiles, max_age: int, fallback):
        self.site = site
        self.max_age = max_age
        self.fallback = fallback

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return self.fallback(environ, start_response)
        site = self.site
        raw_path = environ.get("PATH_INFO", "")
        if method == "GET" and "HTTP_IF_NONE_MATCH" not in environ and "HTTP_IF_MODIFIED_SINCE" not in environ:
            build = site.current()
            if build is not None:
                answer = _plain_get(site, build, raw_path, environ, start_response)
                if answer is not None:
                    return answer
        path = decode_path(environ)
        for _ in range(ATTEMPTS):
            build = site.current()
            if build is None:
                break
            route = build.routes.get(raw_path)
            if route is None:
                key, _redirect = build.resolve(path)
                if key is None:
                    break
                route = (key, build.files[key])
                if len(build.routes) < ANSWERS_KEPT:
                    build.routes[raw_path] = route
            answer = serve_file(site, build, route[0], route[1], environ, start_response, self.max_age)
            if answer is not None:
                return answer
            site.refresh(wait=True)  # the folder moved on: follow the link now
        return self.fallback(environ, start_response)


class Snapshot(NamedTuple):
    """What a LiveSite publishes now: the last in-process build's state, and the files."""

    state: object
    files: object


class LiveSite:
    """create_app's in-process mode: build here, then serve the tree; a thread can keep it current.

    `feeds serve` does not use this: its workers only read, and one builder
    process per server rebuilds (feeds/builder.py, feeds/cli.py).
    """

    def __init__(self, config: Config, site: SiteFiles | None = None):
        from .builder import Builder

        self.config = config
        self.site = site or SiteFiles(config.output.dir)
        self.builder = Builder(config, keep_state=True)
        self.builder.build()
        self.site.refresh(wait=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> Snapshot:
        return Snapshot(self.builder.state, self.site.files())

    def refresh(self) -> bool:
        """Rebuild if the posts changed; True when a new tree was switched in."""
        result = self.builder.build_if_changed()
        self.site.refresh(wait=True)
        return result is not None and not result.report.up_to_date

    def start(self) -> None:
        interval = self.config.server.reload_seconds
        if interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self.builder.run, args=(self._stop, interval), name="feeds-builder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


def create_app(config: Config, *, build: bool = True, start_reloader: bool = True, site: SiteFiles | None = None) -> Flask:
    """The application factory: no state at import time, thin views.

    build=False is the server worker: it serves whatever build the output
    link names and never runs the pipeline. build=True (tests, embedding)
    builds the tree here first, and with start_reloader also rebuilds it on
    a thread when the posts change.
    """
    app = Flask("feeds")
    app.config["FEEDS"] = config
    max_age = config.server.max_age
    if site is None:
        site = SiteFiles(config.output.dir)
    app.extensions["feeds.site"] = site
    if build:
        live = LiveSite(config, site)
        app.extensions["feeds.live"] = live
        if live.builder.publisher is not None:
            app.extensions["feeds.websub"] = live.builder.publisher
        if start_reloader:
            live.start()
    memo: OrderedDict[tuple, bytes] = OrderedDict()
    memo_lock = threading.Lock()
    memo_used = [0]

    def not_found_page() -> Response:
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"}
        build_now = site.current()
        entry = build_now.files.get("/404.html") if build_now is not None else None
        item = site.read(build_now, "/404.html", entry) if entry is not None else None
        if item is None:
            return Response("Not found. The feeds are listed at /opml.xml.\n", status=404, content_type="text/plain; charset=utf-8", headers=headers)
        return Response(item.body, status=404, content_type=CONTENT_TYPES["html"], headers=headers)

    @app.errorhandler(404)
    def not_found(error):
        return not_found_page()

    @app.errorhandler(405)
    def not_allowed(error):
        return Response("Method not allowed: this site is read-only.\n", status=405, content_type="text/plain; charset=utf-8", headers={"Allow": "GET, HEAD"})

    @app.errorhandler(400)
    def bad_request(error):
        return Response(f"Bad request: {error.description}\n", status=400, content_type="text/plain; charset=utf-8")

    @app.errorhandler(503)
    def unavailable(error):
        return Response("The site is being published; try again in a moment.\n", status=503, content_type="text/plain; charset=utf-8", headers={"Retry-After": "1", "Cache-Control": "no-store"})

    def filtered(build_now: Build, key: str, entry: Entry, fmt: str) -> Response:
        from .query import QueryError, canonical_query, filtered_document

        memo_key = (build_now.generation, key, canonical_query(request.args))
        with memo_lock:
            body = memo.get(memo_key)
            if body is not None:
                memo.move_to_end(memo_key)
        if body is None:
            item = site.read(build_now, key, entry)
            if item is None:
                abort(503)

            def read(path: str) -> bytes | None:
                other = build_now.files.get(path)
                found = site.read(build_now, path, other, keep=False) if other is not None else None
                return found.body if found is not None else None

            try:
                body = filtered_document(key, fmt, item.body, read, request.args, base_url=config.site.base_url, items=config.feeds.items)
            except QueryError as exc:
                abort(400, description=str(exc))
            if len(body) <= FILTERED_MEMO_BYTES // 8:
                with memo_lock:
                    if memo_key not in memo:
                        memo[memo_key] = body
                        memo_used[0] += len(body)
                    while memo_used[0] > FILTERED_MEMO_BYTES:
                        memo_used[0] -= len(memo.popitem(last=False)[1])
        etag = '"q' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = list(file_headers(entry.kind, entry.last_modified, max_age))
        headers.append(("ETag", etag))
        inm = request.headers.get("If-None-Match")
        if inm is not None and _etag_match(inm, (etag,)):
            return Response(status=304, headers=[h for h in headers if h[0] != "Content-Type"])
        headers.append(("Content-Length", str(len(body))))
        return Response(b"" if request.method == "HEAD" else body, status=200, headers=headers, direct_passthrough=True)

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    @app.route("/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    def published(path: str):
        from .query import QueryError, parse, subscription_format

        for _ in range(ATTEMPTS):
            build_now = site.current()
            if build_now is None:
                abort(503)
            key, redirect_to = build_now.resolve(request.path)
            if key is None and redirect_to is None:
                abort(404)
            if request.method not in ("GET", "HEAD"):
                abort(405)
            if redirect_to is not None:
                from .slug import url_quote

                location = config.site.base_url + url_quote(redirect_to)
                return Response(status=301, headers={"Location": location, "Cache-Control": f"public, max-age={max_age}"})
            entry = build_now.files[key]
            try:
                options = parse(request.args)
            except QueryError as exc:
                abort(400, description=str(exc))
            if options is not None:
                fmt = subscription_format(key, entry.kind)
                if fmt is None:
                    abort(400, description="limit, filter, filterout and brief apply to feed documents (atom.xml, rss.xml, feed.json) only")
                return filtered(build_now, key, entry, fmt)
            captured: dict = {}

            def start_response(status, headers):
                captured["status"] = status
                captured["headers"] = headers

            chunks = serve_file(site, build_now, key, entry, request.environ, start_response, max_age)
            if chunks is not None:
                return Response(b"".join(chunks), status=captured["status"], headers=captured["headers"], direct_passthrough=True)
            site.refresh(wait=True)
        abort(503)

    app.wsgi_app = StaticFastPath(site, max_age, app.wsgi_app)  # type: ignore[method-assign]
    return app


def app_from_env() -> Flask:
    """Granian's factory target: a reader of the tree named by FEEDS_CONFIG's [output] dir."""
    from .config import load_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = load_config(os.environ.get("FEEDS_CONFIG"))
    app = create_app(config, build=False, start_reloader=False)
    app.extensions["feeds.site"].refresh(wait=True)  # the published build, loaded before the first request
    return app


def run_granian(host: str, port: int, workers: int) -> None:
    """Run granian in this process (the `feeds serve` builder starts it as a child)."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "feeds.web:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        # Two request threads per worker, not granian's default pool: a
        # response here is a dict lookup and a memory copy under the GIL, so
        # more threads only queue behind each other. Measured with wrk (50
        # connections, 38 KB feed, 10k-post site): default p99 42-53 ms,
        # 2 threads p99 5.5-8.5 ms and more requests/s (nginx: 7.3 ms). Two
        # rather than one, so that one slow request (a filtered query reading
        # archive pages) does not stall the worker.
        blocking_threads=2,
        # granian waits for a stopping worker forever by default; one stuck
        # in its shutdown kept granian up until `feeds serve` killed it, and
        # then outlived both (seen once in CI, under load)
        workers_kill_timeout=5,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    run_granian(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
