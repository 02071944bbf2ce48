"""The published tree as the live server reads it: from disk, the way nginx would.

`feeds build` (and the builder process next to `feeds serve`) writes every
file into a build folder, describes it in a manifest beside the folder
(site path → [input key, content digest, kind, last_modified]) and then
switches the output symlink to it. A server worker only follows that link:

* `SiteFiles.current()` notices a switch on the next request: the writer
  counts its switches in a small shared file beside the builds (see
  `switching`), which a worker reads from memory on every request; only
  when the count has moved does it read the link, and it loads the
  manifest of the build the link names. The link and the manifest are
  also re-checked every `check_interval` seconds (a link moved by hand).
  A manifest that cannot be used (half written, unknown format) is
  retried shortly; the previous build stays in service meanwhile.
* Headers, ETags and 304s come from the manifest alone.
* Bodies are read from the build folder and must hash to the manifest's
  digest before a byte is sent. A build folder can be rewritten under a
  worker (builds alternate between folders, and old ones are pruned), so a
  missing or different file makes the worker re-read the link and try
  again, never serve bytes its ETag does not describe.
* A bounded LRU of hot bodies, keyed by digest (so a file unchanged
  between builds stays cached across the switch), keeps the busy files in
  memory; the gzip variant of each is made once, on first demand.

Nothing here imports the pipeline: a worker's memory is this module, the
manifest and the hot cache.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import mmap
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple

log = logging.getLogger("feeds.served")

# The writer's names (feeds/build.py); repeated here so a worker does not
# import the whole pipeline just for two strings.
MANIFEST_SUFFIX = ".manifest.json"
KINDS = ("atom", "rss", "json", "html", "opml", "xsl")
DIGEST_HEX = 32  # SHA-256, first 128 bits

CHECK_INTERVAL = 0.1
RETRY_UNUSABLE = 0.2
HOT_CACHE_BYTES = int(os.environ.get("FEEDS_HOT_CACHE_MB", "48")) * 1024 * 1024
GZIP_MIN_BYTES = 256
_UNSET = object()


class Entry(NamedTuple):
    digest: str
    kind: str
    last_modified: float | None  # POSIX seconds; None: no Last-Modified


def digest_of(data: bytes) -> str:
    """A published file's digest, its ETag: the writer records it, the server checks it.

    SHA-256 rather than BLAKE2: the CPU computes it (SHA extensions), twice
    as fast here over the ~450 MB a 10,000-post site writes. Its length
    differs from the BLAKE2-160 digests of builds before it, so their
    manifests read as not understood instead of as every file damaged.
    """
    return hashlib.sha256(data).hexdigest()[:DIGEST_HEX]


def _hex(value) -> bool:
    return isinstance(value, str) and len(value) == DIGEST_HEX and all(c in "0123456789abcdef" for c in value)


def parse_manifest(data) -> dict[str, Entry] | None:
    """path → Entry, or None when this is not a manifest this code understands.

    Entries are [input key, digest, kind, last_modified]. Anything else (the
    older two-field entries included) makes the whole manifest unusable:
    better the previous build for a moment than guessed headers.
    """
    if not isinstance(data, dict):
        return None
    files: dict[str, Entry] = {}
    for path, value in data.items():
        if path == "":
            continue  # build options
        if not isinstance(path, str) or not path.startswith("/") or not isinstance(value, list):
            return None
        if len(value) != 4:
            return None
        _key, digest, kind, modified = value
        if not _hex(digest) or kind not in KINDS:
            return None
        if modified is not None and (isinstance(modified, bool) or not isinstance(modified, (int, float))):
            return None
        files[path] = Entry(digest, kind, None if modified is None else float(modified))
    return files


def read_manifest(file: str | Path) -> dict[str, Entry] | None:
    try:
        with open(file, "rb") as handle:
            return parse_manifest(json.loads(handle.read()))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def link_target(out: str | Path) -> str | None:
    """The build folder the output link names (absolute), or None."""
    out = os.path.abspath(out)
    text = _link_text(out)
    return None if text is None else _resolve(out, text)


def _link_text(link: str) -> str | None:
    try:
        return os.readlink(link)
    except OSError:
        return None


def _resolve(link: str, text: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(link), text))


# Beside the builds: how many times the output link was switched, twice
# per switch (odd while one is under way), as 8 little-endian bytes.
SWITCHES_NAME = "switches"


def switches_file(out: str | Path) -> str:
    out = os.path.abspath(out)
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.builds", SWITCHES_NAME)


class switching:
    """Around the rename that switches the output link (one writer at a time: the builds lock).

    The count goes odd before the rename and even after it, so a reader
    that saw an even count, and then the link, knows the link has not
    moved for as long as the count stays the same.
    """

    def __init__(self, out: str | Path):
        self.path = switches_file(out)

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            self.counter = mmap.mmap(fd, 8)
        finally:
            os.close(fd)
        count = int.from_bytes(self.counter[:8], "little")
        self.odd = count + 1 if count % 2 == 0 else count + 2
        self.counter[:8] = self.odd.to_bytes(8, "little")
        return self

    def __exit__(self, *exc_info) -> None:
        # even after a failed rename too: the link is then where it was
        self.counter[:8] = (self.odd + 1).to_bytes(8, "little")
        self.counter.close()


def _open_switches(path: str) -> tuple[mmap.mmap, tuple] | None:
    """The switch count mapped read-only, and its file's identity (None when it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_size < 8:
            return None
        return mmap.mmap(fd, 8, access=mmap.ACCESS_READ), (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def published_manifest(out: str | Path) -> dict[str, Entry] | None:
    """The manifest of the build `out` links to now (None if there is none or it is unusable)."""
    folder = link_target(out)
    return None if folder is None else read_manifest(folder + MANIFEST_SUFFIX)


def _safe_parts(path: str) -> list[str] | None:
    parts = path[1:].split("/")
    if any(p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts):
        return None
    return parts


class Build:
    """One build folder and its manifest, as loaded by a worker."""

    __slots__ = ("folder", "files", "identity", "generation", "routes", "answers")

    def __init__(self, folder: str, files: dict[str, Entry], identity: tuple, generation: int):
        self.folder = folder
        self.files = files
        self.identity = identity
        self.generation = generation
        # what requests to this build have worked out already, so that the
        # next request for the same file does none of it again (a cached
        # answer's own Python was 40% of a worker's time under load, and a
        # worker serves no faster than it runs Python): the request path
        # as received → (manifest path, entry); (manifest path, gzip) → the
        # 200 answer's headers. Both are bounded by the files asked for.
        self.routes: dict[str, tuple[str, Entry]] = {}
        self.answers: dict[tuple[str, bool], tuple] = {}

    def resolve(self, path: str) -> tuple[str | None, str | None]:
        """→ (manifest path to serve, or None; a folder to redirect to, or None)."""
        files = self.files
        if path in files:
            return path, None
        if path.endswith("/"):
            key = path + "index.html"
            return (key, None) if key in files else (None, None)
        if path + "/index.html" in files:
            return None, path + "/"
        return None, None

    def file_path(self, path: str) -> str | None:
        parts = _safe_parts(path)
        return None if parts is None else os.path.join(self.folder, *parts)


class Hot:
    """A cached body and, once asked for, its gzip variant (None: not worth it)."""

    __slots__ = ("body", "gz", "size", "stored")

    def __init__(self, body: bytes):
        self.body = body
        self.gz = _UNSET
        self.size = len(body)
        self.stored = False


class HotCache:
    """LRU of bodies keyed by content digest, bounded by bytes (gzip variants count)."""

    def __init__(self, budget: int = HOT_CACHE_BYTES):
        self.budget = budget
        self.item_limit = max(budget // 8, 1)
        self.used = 0
        self.items: OrderedDict[str, Hot] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, digest: str) -> Hot | None:
        # no lock on the hot path: each step is one call into C under the
        # GIL, and an entry evicted in between is only not moved up
        item = self.items.get(digest)
        if item is None:
            self.misses += 1
            return None
        try:
            self.items.move_to_end(digest)
        except KeyError:
            pass  # evicted by another thread meanwhile: the body in hand is still right
        self.hits += 1
        return item

    def put(self, digest: str, body: bytes) -> Hot:
        item = Hot(body)
        if item.size > self.item_limit:
            return item
        with self.lock:
            known = self.items.get(digest)
            if known is not None:
                return known
            item.stored = True
            self.items[digest] = item
            self.used += item.size
            self._evict()
        return item

    def ready(self, digest: str, gzipped: bool) -> bytes | None:
        """The kept body to send again: its gzip variant when `gzipped` and it has one; None when it is not kept (or its variant not made yet)."""
        item = self.get(digest)
        if item is None:
            return None
        if not gzipped:
            return item.body
        gz = item.gz
        if gz is _UNSET:
            return None
        return item.body if gz is None else gz

    def gzipped(self, item: Hot) -> bytes | None:
        gz = item.gz
        if gz is _UNSET:
            gz = None
            if item.size >= GZIP_MIN_BYTES:
                packed = gzip.compress(item.body, compresslevel=6, mtime=0)
                if len(packed) < item.size:
                    gz = packed
            with self.lock:
                if item.gz is _UNSET:
                    item.gz = gz
                    if item.stored and gz is not None:
                        item.size += len(gz)
                        self.used += len(gz)
                        self._evict()
                gz = item.gz
        return gz  # type: ignore[return-value]

    def retain(self, digests: set[str]) -> None:
        """Drop bodies no longer published: under churn the cache then holds the
        current hot files, not a trail of every version it ever served."""
        with self.lock:
            for digest in [d for d in self.items if d not in digests]:
                old = self.items.pop(digest)
                old.stored = False
                self.used -= old.size

    def _evict(self) -> None:
        while self.used > self.budget and self.items:
            _, old = self.items.popitem(last=False)
            old.stored = False
            self.used -= old.size


class SiteFiles:
    """The build the output link names: a switch is followed on the next request, the link and manifest re-checked every `check_interval` s."""

    def __init__(self, out: str | Path, *, check_interval: float = CHECK_INTERVAL, cache_bytes: int = HOT_CACHE_BYTES):
        self.link = os.path.abspath(out)
        self.check_interval = check_interval
        self.hot = HotCache(cache_bytes)
        self.build: Build | None = None
        self.generation = 0
        self.reloads = 0
        self._next_check = 0.0
        self._link_said: str | None = None  # the link's text when self.build was last confirmed
        self._switches_path = switches_file(self.link)
        self._switches: tuple[mmap.mmap, tuple] | None = None  # the writer's switch count, mapped, and its file's identity
        self._switches_seen: bytes | None = None  # an even count read before the link was last found unmoved
        self._lock = threading.Lock()
        self._complained: tuple | None = None

    def current(self) -> Build | None:
        build = self.build
        now = time.monotonic()
        if build is not None and (now >= self._next_check or self._complained is None):
            # Has the link moved? Then another worker may already be serving
            # the new build, and this request must not answer from the old
            # one (a reader who saw a post in a feed must find its page).
            # The switch count is read from memory; the link (a readlink, a
            # third of a cached answer's time) only when the count moved.
            switches = self._switches
            count = switches[0][:8] if switches is not None else None
            if count is None or count != self._switches_seen or now >= self._next_check:
                if _link_text(self.link) != self._link_said:
                    return self.refresh(wait=True)
                if count is not None and count[0] % 2 == 0:
                    self._switches_seen = count
        if now >= self._next_check:
            # with no build yet, wait for the request loading one: answering
            # 503 meanwhile kept that request from the GIL, and a worker
            # started under load took seconds to load its first manifest
            self.refresh(wait=build is None)
        return self.build

    def refresh(self, wait: bool = False) -> Build | None:
        """Follow the link again; with `wait`, also when another thread is already at it."""
        if not self._lock.acquire(blocking=wait):
            return self.build  # another request is loading it: serve the current build meanwhile
        try:
            self._refresh()
        finally:
            self._lock.release()
        return self.build

    def _refresh(self) -> None:
        now = time.monotonic()
        self._map_switches()
        count = self._switches[0][:8] if self._switches is not None else None
        self._switches_seen = None
        said = _link_text(self.link)
        folder = None if said is None else _resolve(self.link, said)
        if folder is None:
            self._unusable(("no link", self.link), f"{self.link}: no published build yet (is it a symlink made by `feeds build`?)")
            return
        manifest = folder + MANIFEST_SUFFIX
        try:
            with open(manifest, "rb") as handle:
                st = os.fstat(handle.fileno())
                identity = (folder, st.st_ino, st.st_mtime_ns, st.st_size)
                if self.build is not None and self.build.identity == identity:
                    self._confirmed(said, count)
                    self._next_check = now + self.check_interval
                    return
                raw = handle.read()
        except OSError as exc:
            self._unusable(("unreadable", manifest), f"{manifest}: cannot read ({exc.strerror or exc}); retrying")
            return
        try:
            files = parse_manifest(json.loads(raw))
        except (ValueError, UnicodeDecodeError):
            files = None
        if files is None:
            self._unusable(identity, f"{manifest}: not a manifest this server can use; retrying shortly")
            return
        self.generation += 1
        self.reloads += 1
        self.build = Build(folder, files, identity, self.generation)
        self._confirmed(said, count)
        self.hot.retain({entry.digest for entry in files.values()})
        self._complained = None
        self._next_check = time.monotonic() + self.check_interval

    def _confirmed(self, said: str, count: bytes | None) -> None:
        self._link_said = said
        if count is not None and count[0] % 2 == 0:
            self._switches_seen = count

    def _map_switches(self) -> None:
        """Map the writer's switch count, again when its file was replaced (the builds folder made anew)."""
        try:
            st = os.stat(self._switches_path)
            identity = (st.st_dev, st.st_ino)
        except OSError:
            identity = None
        if self._switches is not None and self._switches[1] == identity:
            return
        if self._switches is not None:
            self._switches = None  # the old mapping is closed when no request holds it any more
        if identity is not None:
            self._switches = _open_switches(self._switches_path)

    def _unusable(self, what: tuple, message: str) -> None:
        if self._complained != what:
            self._complained = what
            log.warning("%s", message)
        self._next_check = time.monotonic() + RETRY_UNUSABLE

    def read(self, build: Build, path: str, entry: Entry, *, keep: bool = True) -> Hot | None:
        """The verified body of `path` in `build`; None when the folder no longer holds those bytes."""
        item = self.hot.get(entry.digest)
        if item is not None:
            return item
        file = build.file_path(path)
        if file is None:
            return None
        try:
            fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        if digest_of(data) != entry.digest:
            return None  # rewritten under us (the folder is being reused or pruned)
        return self.hot.put(entry.digest, data) if keep else Hot(data)

    def files(self) -> "BuildFiles":
        return BuildFiles(self)


class Published(NamedTuple):
    path: str
    body: bytes
    etag: str
    kind: str
    last_modified: float | None


class BuildFiles(Mapping[str, Published]):
    """Read-only view of the current build: path → Published (body read on access)."""

    def __init__(self, site: SiteFiles):
        self.site = site
        self.build = site.refresh(wait=True)

    def _files(self) -> dict[str, Entry]:
        return self.build.files if self.build is not None else {}

    def __getitem__(self, path: str) -> Published:
        entry = self._files()[path]
        item = self.site.read(self.build, path, entry, keep=False)
        if item is None:
            raise KeyError(path)
        return Published(path, item.body, f'"{entry.digest}"', entry.kind, entry.last_modified)

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())

    def __contains__(self, path) -> bool:
        return path in self._files()
