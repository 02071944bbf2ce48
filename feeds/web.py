"""The live server: a Flask app whose published files are served from memory.

`create_app(config)` builds the site once, then keeps it current: a
background thread polls the source folder every `[server] reload_seconds`,
rebuilds through the content-keyed cache (unchanged posts are not
processed again) and swaps the new Snapshot in with one reference
assignment, so a request sees the old site or the new one, never a mix.

Published files go through `StaticFastPath`, a plain WSGI layer in front of
Flask: a dict lookup, precomputed headers and precompressed gzip bodies,
conditional GET. Everything else (query-filtered feeds, 404 pages,
redirects) is ordinary Flask.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Callable

from flask import Flask, Response, abort, request

from .build import SiteState, run_pipeline
from .config import Config
from .pipeline import Cache, make_job
from .render.site import PAGE_CSP, Resource, SiteRenderer
from .collect import find_sources

log = logging.getLogger("feeds.web")

FEED_KINDS = ("atom", "rss", "json", "opml")
GZIP_MIN_BYTES = 256


@dataclass(frozen=True)
class Served:
    """One published file with everything a response needs, computed once."""

    body: bytes
    etag: str
    headers: tuple[tuple[str, str], ...]  # shared by 200 and 304
    last_modified: datetime | None
    kind: str
    _packed: list = field(default_factory=list, compare=False, repr=False)

    @property
    def gzipped(self) -> bytes | None:
        """The gzip body, compressed on first demand and then kept (never per request).

        Compressing every file up front would make a large site start slowly
        and hold a second copy of files nobody asks for compressed.
        """
        if not self._packed:
            packed = None
            if len(self.body) >= GZIP_MIN_BYTES:
                candidate = gzip.compress(self.body, compresslevel=6, mtime=0)
                if len(candidate) < len(self.body):
                    packed = candidate
            self._packed.append(packed)
        return self._packed[0]


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


def serve_entry(resource: Resource, max_age: int) -> Served:
    digest = hashlib.blake2b(resource.body, digest_size=12).hexdigest()
    etag = f'"{digest}"'
    headers = [
        ("Content-Type", resource.content_type),
        ("Cache-Control", f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if resource.kind in FEED_KINDS or resource.kind == "xsl":
        headers.append(("Access-Control-Allow-Origin", "*"))
    if resource.kind == "html":
        headers.append(("Content-Security-Policy", PAGE_CSP))
        headers.append(("Referrer-Policy", "no-referrer"))
    if resource.last_modified is not None:
        headers.append(("Last-Modified", _http_date(resource.last_modified)))
    last = resource.last_modified.replace(microsecond=0) if resource.last_modified else None
    return Served(resource.body, etag, tuple(headers), last, resource.kind)


@dataclass(frozen=True)
class Snapshot:
    """An immutable published site: path → Served, plus what made it."""

    files: dict[str, Served]
    state: SiteState
    renderer: SiteRenderer
    built_at: float
    source_stamp: tuple
    keys: dict[str, str] = field(default_factory=dict)  # path → input key of its Served


def _source_stamp(config: Config) -> tuple:
    """Cheap change detector: every matching file's name, size and mtime."""
    found, problems = find_sources(config.source.dir, config.source.pattern)
    stamp = []
    for path, rel in found:
        try:
            st = path.stat()
        except OSError:
            continue
        stamp.append((rel, st.st_size, st.st_mtime_ns))
    return tuple(stamp)


def build_snapshot(config: Config, cache: Cache | None = None, previous: Snapshot | None = None) -> Snapshot:
    """Run the pipeline; files whose key is unchanged are taken over from `previous`."""
    stamp = _source_stamp(config)
    state = run_pipeline(config, cache=cache)
    renderer = SiteRenderer(config, state.catalog)
    files: dict[str, Served] = {}
    keys: dict[str, str] = {}
    old_files = previous.files if previous else {}
    old_keys = previous.keys if previous else {}
    for pending in renderer.plan():
        keys[pending.path] = pending.key
        if old_keys.get(pending.path) == pending.key and pending.path in old_files:
            files[pending.path] = old_files[pending.path]
        else:
            files[pending.path] = serve_entry(pending.render(), config.server.max_age)
    renderer.release()  # the entry fragments live on inside the served bytes
    return Snapshot(files=files, state=state, renderer=renderer, built_at=time.time(), source_stamp=stamp, keys=keys)


class LiveSite:
    """Holds the current Snapshot and replaces it when the posts change."""

    def __init__(self, config: Config, on_swap: Callable[[Snapshot, Snapshot], None] | None = None):
        self.config = config
        # the build cache on disk: a restart (or `feeds build` before it)
        # means no post is sanitized twice
        self.cache = Cache(config.build.cache_dir, make_job(config))
        self.snapshot = build_snapshot(config, self.cache)
        self.on_swap = on_swap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Rebuild if the posts changed; True when a new snapshot was swapped in."""
        with self._lock:
            stamp = _source_stamp(self.config)
            if stamp == self.snapshot.source_stamp:
                return False
            old = self.snapshot
            new = build_snapshot(self.config, self.cache, old)
            self.snapshot = new  # one reference assignment: atomic for readers
        known = set(old.state.problems)
        for problem in new.state.problems:
            if problem not in known:
                log.warning("%s", problem)
        log.info("reloaded: %d posts, %d files", len(new.state.catalog.articles), len(new.files))
        if self.on_swap:
            try:
                self.on_swap(old, new)
            except Exception:  # a failing hook must not stop reloading
                log.exception("after-reload hook failed")
        return True

    def start(self) -> None:
        interval = self.config.server.reload_seconds
        if interval <= 0 or self._thread is not None:
            return
        self._watcher = None
        try:
            self._watcher = subprocess.Popen(
                [sys.executable, "-m", "feeds.watch", str(self.config.source.dir), self.config.source.pattern, str(interval)],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            log.warning("cannot start the watcher process; polling in this process instead")

        def refresh_safely() -> None:
            try:
                self.refresh()
            except Exception:  # keep serving the last good site
                log.exception("reload failed; still serving the previous version")

        def follow_watcher() -> None:
            # a blocking read: no GIL held while nothing changes
            for _line in self._watcher.stdout:
                if self._stop.is_set():
                    break
                refresh_safely()

        def poll() -> None:
            while not self._stop.wait(interval):
                refresh_safely()

        target = follow_watcher if self._watcher is not None else poll
        self._thread = threading.Thread(target=target, name="feeds-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        watcher = getattr(self, "_watcher", None)
        if watcher is not None and watcher.poll() is None:
            watcher.terminate()
            try:
                watcher.wait(5)
            except subprocess.TimeoutExpired:
                watcher.kill()


def _etag_matches(header: str, etags: tuple[str, ...]) -> bool:
    header = header.strip()
    if header == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate in etags:
            return True
    return False


def _not_modified_since(header: str, last_modified: datetime | None) -> bool:
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
    return last_modified <= since


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


def resolve(files: dict[str, Served], path: str) -> tuple[str | None, str | None]:
    """→ (key of the file to serve, or None; a redirect location, or None)."""
    if path in files:
        return path, None
    if path.endswith("/"):
        key = path + "index.html"
        return (key, None) if key in files else (None, None)
    if path + "/index.html" in files:
        return None, path + "/"
    return None, None


class StaticFastPath:
    """WSGI middleware: published files straight from the snapshot."""

    def __init__(self, live: LiveSite, fallback):
        self.live = live
        self.fallback = fallback

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return self.fallback(environ, start_response)
        files = self.live.snapshot.files
        key, _redirect = resolve(files, decode_path(environ))
        if key is None:
            return self.fallback(environ, start_response)
        return respond(files[key], environ, start_response, method == "HEAD")


def respond(served: Served, environ, start_response, head_only: bool, body: bytes | None = None):
    """200 or 304 for one Served file (or a filtered `body` in its place)."""
    payload = served.body if body is None else body
    etag = served.etag
    wants_gzip = body is None and _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    gzipped = served.gzipped if wants_gzip else None
    use_gzip = gzipped is not None
    etags = (etag, etag[:-1] + '-gz"')
    current_etag = etags[1] if use_gzip else etag
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        not_modified = _etag_matches(inm, etags)
    else:
        ims = environ.get("HTTP_IF_MODIFIED_SINCE")
        not_modified = ims is not None and _not_modified_since(ims, served.last_modified)
    headers = list(served.headers)
    headers.append(("ETag", current_etag))
    if not_modified:
        start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Type"])
        return [b""]
    if use_gzip:
        payload = gzipped
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(payload))))
    start_response("200 OK", headers)
    return [b""] if head_only else [payload]


def create_app(config: Config, *, live: LiveSite | None = None, start_reloader: bool = True) -> Flask:
    """The application factory: no state at import time, thin views."""
    app = Flask("feeds")
    app.config["FEEDS"] = config
    if live is None:
        hook = None
        if config.websub.hub:
            from .websub import Publisher

            publisher = Publisher(config.websub.hub, config.site.base_url)
            app.extensions["feeds.websub"] = publisher
            hook = lambda old, new: publisher(old.files, new.files)  # noqa: E731
        live = LiveSite(config, on_swap=hook)
    app.extensions["feeds.live"] = live
    if start_reloader:
        live.start()

    @app.errorhandler(404)
    def not_found(error):
        snapshot = live.snapshot
        body = snapshot.renderer.render_404(request.path)
        return Response(body, status=404, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP})

    @app.errorhandler(405)
    def not_allowed(error):
        return Response("Method not allowed: this site is read-only.\n", status=405, content_type="text/plain; charset=utf-8", headers={"Allow": "GET, HEAD"})

    @app.errorhandler(400)
    def bad_request(error):
        return Response(f"Bad request: {error.description}\n", status=400, content_type="text/plain; charset=utf-8")

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    @app.route("/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    def published(path: str):
        snapshot = live.snapshot
        key, redirect_to = resolve(snapshot.files, request.path)
        if key is None and redirect_to is None:
            abort(404)
        if request.method not in ("GET", "HEAD"):
            abort(405)
        if redirect_to is not None:
            from .slug import url_quote

            location = config.site.base_url + url_quote(redirect_to)
            return Response(status=301, headers={"Location": location, "Cache-Control": f"public, max-age={config.server.max_age}"})
        served = snapshot.files[key]
        from .query import filtered_body, QueryError

        try:
            body = filtered_body(snapshot, key, served, request.args)
        except QueryError as exc:
            abort(400, description=str(exc))
        environ = request.environ

        captured = {}

        def start_response(status, headers):
            captured["status"] = status
            captured["headers"] = headers

        chunks = respond(served, environ, start_response, request.method == "HEAD", body)
        return Response(b"".join(chunks), status=captured["status"], headers=captured["headers"], direct_passthrough=True)

    app.wsgi_app = StaticFastPath(live, app.wsgi_app)  # type: ignore[method-assign]
    return app


def app_from_env() -> Flask:
    """Granian's factory target: the config named by FEEDS_CONFIG."""
    from .config import load_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = load_config(os.environ.get("FEEDS_CONFIG"))
    return create_app(config)
