"""collect → normalize → sanitize for every post, on every core, with a cache.

`load_articles(config)` is the whole front half of the pipeline: it returns
the published Articles and every Problem met on the way. Each file is
processed by `process_source`, a pure function of its bytes and the
settings, which is what makes the content-keyed cache and the worker
processes safe.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import mmap
import os
import pickle
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property, lru_cache
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, NamedTuple

from . import __version__
from .collect import MAX_FILE_BYTES, front_matter_yaml, parse_post_bytes, scan_sources
from .config import Config
from .gcpause import cyclic_gc_paused
from .model import ERROR, Article, Problem, WARNING, pickled_by_fields
from .normalize import Settings, make_article, normalize_meta
from .policy import Policy, get_sanitizer

INLINE_LIMIT = 48  # below this many changed posts, worker start-up costs more than it saves
CACHE_FORMAT = 2


@dataclass(frozen=True)
class Job:
    settings: Settings
    policy: Policy
    engine: str


@pickled_by_fields
@dataclass(frozen=True)
class Outcome:
    """What one source file became: an Article (or None) and its problems."""

    article: Article | None
    problems: tuple[Problem, ...]
    skipped_draft: bool = False
    body_bytes: int = -1  # size of the stored body (with its checksum), when the body was stored away


@dataclass
class LoadResult:
    articles: list[Article]
    problems: list[Problem]
    files: int = 0
    drafts: int = 0
    processed: int = 0  # files that were not in the cache
    seconds: float = 0.0
    # rel → content key of the files changed within RACY_SECONDS of the
    # build's start: the only ones a later stat could fail to tell apart
    recent_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    cache_dir: Path | None = None  # the build cache used (None: --no-cache), where the renderer may keep its own


def make_job(config: Config) -> Job:
    settings = Settings(
        base_url=config.site.base_url,
        timezone=config.site.timezone,
        default_category=config.site.default_category,
        permalink=config.site.permalink,
        placeholder_image_hosts=config.sanitize.placeholder_image_hosts,
        summary_chars=config.feeds.summary_chars,
        category_slugs=config.categories.slugs,
    )
    policy = Policy(
        drop_selectors=config.sanitize.drop_selectors,
        iframe_hosts=config.sanitize.iframe_hosts,
        placeholder_image_hosts=config.sanitize.placeholder_image_hosts,
    )
    return Job(settings, policy, config.sanitize.engine)


def process_source(raw: bytes, path: Path, rel: str, display: str, job: Job) -> Outcome:
    """One file's bytes → Outcome. Pure: the same input gives the same output."""
    [result] = process_sources([(raw, path, rel, display)], job)
    if isinstance(result, Exception):
        raise result
    return result


class _InProgress:
    """One post on its way through process_sources' stages."""

    __slots__ = ("raw", "path", "rel", "display", "post", "meta", "body", "problems", "result")

    def __init__(self, raw: bytes, path: Path, rel: str, display: str):
        self.raw, self.path, self.rel, self.display = raw, path, rel, display
        self.problems: list[Problem] = []
        self.result: Outcome | Exception | None = None  # set once the post is done with


def _read_front_matter(work: _InProgress, job: Job, sanitizer) -> None:
    post, work.problems = parse_post_bytes(work.raw, work.path, work.rel, work.display)
    if post is None:
        work.result = Outcome(None, tuple(work.problems))
    work.post = post


def _normalize(work: _InProgress, job: Job, sanitizer) -> None:
    meta, more = normalize_meta(work.post, job.settings, work.display)
    work.problems += more
    if meta.draft:
        work.result = Outcome(None, tuple(work.problems), skipped_draft=True)
    work.meta = meta


def _sanitize(work: _InProgress, job: Job, sanitizer) -> None:
    try:
        work.body = sanitizer.clean(work.post.body, work.meta.link)
    except RecursionError:
        work.problems.append(Problem(work.display, work.post.body_line, ERROR, "body nests HTML elements too deeply to sanitize"))
        work.result = Outcome(None, tuple(work.problems))


def _make_article(work: _InProgress, job: Job, sanitizer) -> None:
    work.problems.extend(Problem(work.display, work.post.body_line, WARNING, note) for note in work.body.notes)
    work.result = Outcome(make_article(work.post, work.meta, work.body, job.settings), tuple(work.problems))


_STAGES = (_read_front_matter, _normalize, _sanitize, _make_article)


def process_sources(sources: list[tuple[bytes, Path, str, str]], job: Job, marks: mmap.mmap | None = None, indices: list[int] | None = None) -> list[Outcome | Exception]:
    """process_source for several posts (bytes, path, rel, display): each one's Outcome, or the exception it raised.

    Stage by stage: every post's front matter, then every post's metadata,
    then every body, then every article. Each stage's code and data stay in
    the CPU's caches across the batch; one post through every stage at a
    time took about a fifth longer per post (generated posts, both engines).
    With `marks` (a load worker's, see _MARKS), the post being worked on is
    marked at its source's index in `indices` while it is, so that a crash
    names it.
    """
    sanitizer = get_sanitizer(job.engine, job.policy)
    batch = [_InProgress(*source) for source in sources]
    for stage in _STAGES:
        for position, work in enumerate(batch):
            if work.result is not None:
                continue
            if marks is not None:
                marks[indices[position]] = _WORKING
            try:
                stage(work, job, sanitizer)
            except Exception as exc:  # this post's alone: the others go on
                work.result = exc
            if marks is not None:
                marks[indices[position]] = 0
    return [work.result for work in batch]


def _exit_with_parent(parent: int) -> None:
    """In a worker: end when the build that started it ends, even by SIGKILL.

    A killed build cannot shut its pool down; its workers would otherwise
    wait on the task queue forever. Forked workers also go back to Python's
    own signal handling: they would inherit `feeds serve`'s handlers, whose
    SIGTERM stops the server, and a pool is shut down with SIGTERM.
    """
    import gc
    import signal
    import threading

    # forked while the build's collector was paused (cyclic_gc_paused); the
    # trees a sanitizer builds are full of cycles, so a worker needs it back.
    # What the worker inherited lives as long as it does: frozen, the
    # collector never walks it (a fifth of a load worker's collecting) nor
    # copies its pages by writing to it
    gc.enable()
    gc.freeze()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="feeds-parent-watch", daemon=True).start()


# In a load worker: one byte per source file, in memory shared with the
# build, set while the worker is working on that post. When a worker dies
# (a C library crashing on a hostile body), the post it was on is the suspect.
_MARKS: mmap.mmap | None = None
_WORKING = 1


def _process_batch(batch: list[tuple[int, str, str, str]], job: Job, body_dir: str | None) -> list[tuple[str | None, Outcome]]:
    return process_files(batch, job, body_dir, _MARKS)


def _process_all_and_send(send, batch: list[tuple[int, str, str, str]], job: Job, body_dir: str | None) -> None:
    """In a forked child: each post's (index, result) as soon as it is made; ("raise", exception) ends it."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not `feeds serve`'s handler
    for index, path, rel, display in batch:
        try:
            result = process_file(path, rel, display, job, body_dir)
        except BaseException as exc:  # the build's to report, as it would be without the fork
            try:
                send.send(("raise", exc))
            except Exception:  # an exception that cannot be pickled
                send.send(("raise", RuntimeError(f"{type(exc).__name__}: {exc}")))
            break
        send.send((index, result))
    send.close()


def process_file_alone(path: str, rel: str, display: str, job: Job, body_dir: str | None) -> tuple[str | None, Outcome]:
    """process_file in a forked process of its own, so that a crash costs only this post."""
    import multiprocessing
    import signal

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_process_all_and_send, args=(send, [(0, path, rel, display)], job, body_dir), daemon=True)
    child.start()
    send.close()
    try:
        index, result = receive.recv()
    except EOFError:  # it died before sending
        index = None
    finally:
        receive.close()
        child.join()
    if index == "raise":
        raise result
    if index is not None:
        return result
    code = child.exitcode
    try:
        how = f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exited with status {code}"
    except ValueError:
        how = f"was killed by signal {-code}"
    message = f"the process sanitizing this post {how}: not published (a bug in feeds or a library it uses; the other posts are not affected)"
    return None, Outcome(None, (Problem(display, None, ERROR, message),))


def process_file(path: str, rel: str, display: str, job: Job, body_dir: str | None) -> tuple[str | None, Outcome]:
    """Read one post and process it: (its content key, Outcome); the key is None if it cannot be read."""
    [result] = process_files([(-1, path, rel, display)], job, body_dir)
    return result


def process_files(batch: list[tuple[int, str, str, str]], job: Job, body_dir: str | None, marks: mmap.mmap | None = None) -> list[tuple[str | None, Outcome]]:
    """Read posts (index, path, rel, display) and process them: each one's (content key, Outcome).

    The key is None if the post cannot be read, or if the code failed on it
    (reported with the file's name, and not cached: the next build tries
    again). The bytes are read here, in the worker, and keyed by what was
    read: the build's main process never holds a post's bytes, and an
    Outcome is always filed under the content it was made from, even if
    the file changed after the build looked at it.
    """
    results: list[tuple[str | None, Outcome] | None] = [None] * len(batch)
    sources: list[tuple[bytes, Path, str, str]] = []
    read: list[tuple[int, str]] = []  # (position in batch, content key) of each post read
    for position, (_index, path, rel, display) in enumerate(batch):
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            results[position] = (None, Outcome(None, (Problem(display, None, ERROR, f"cannot read post: {exc.strerror or exc}"),)))
            continue
        if len(raw) > MAX_FILE_BYTES:
            results[position] = (None, Outcome(None, (Problem(display, None, ERROR, f"file is over the limit of {MAX_FILE_BYTES} bytes"),)))
            continue
        sources.append((raw, Path(path), rel, display))
        read.append((position, Cache.key(raw, rel)))
    outcomes = process_sources(sources, job, marks, [batch[position][0] for position, _key in read])
    for (position, key), outcome in zip(read, outcomes):
        if isinstance(outcome, Exception):
            display = batch[position][3]
            message = f"cannot process post ({type(outcome).__name__}: {outcome}); this is a bug in feeds, please report it"
            results[position] = (None, Outcome(None, (Problem(display, None, ERROR, message),)))
        else:
            results[position] = (key, store_body(body_dir, outcome) if body_dir else outcome)
    return results  # type: ignore[return-value]


# Stored bodies live in pack files: each process appends the bodies it
# makes to a pack of its own, so a cold build creates a handful of files
# instead of one per post (on a slow disk, creating a file costs as much as
# rendering a page), and a rebuild checks a handful of sizes.
_WRITING: dict[str, tuple[int, str, int]] = {}  # body folder → (pid, path, descriptor) of this process's pack
_READING: "OrderedDict[str, int]" = OrderedDict()  # pack path → open descriptor, most recent last
READERS_KEPT = 64
PACK_PREFIX = "pack-"


def _pack_for(body_dir: str) -> tuple[str, int]:
    pid = os.getpid()
    held = _WRITING.get(body_dir)
    if held is not None and held[0] == pid and os.fstat(held[2]).st_nlink == 0:
        _stop_writing(body_dir)  # removed under us (found damaged, or the cache was cleared)
        held = None
    if held is None or held[0] != pid:  # none yet, or inherited by a forked worker
        os.makedirs(body_dir, exist_ok=True)
        path = f"{body_dir}/{PACK_PREFIX}{pid}-{os.urandom(6).hex()}"
        held = _WRITING[body_dir] = (pid, path, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
    return held[1], held[2]


def _stop_writing(body_dir: str) -> None:
    held = _WRITING.pop(body_dir, None)
    if held is not None and held[0] == os.getpid():
        os.close(held[2])


def body_checksum(data: bytes) -> bytes:
    # SHA-256 (OpenSSL's, with the CPU's SHA instructions) takes 13 µs for a
    # 15 KB body where Python's own BLAKE2b takes 29: a post is hashed three
    # times on its way into the cache, and again each time its body is read
    return hashlib.sha256(data).digest()[:16]


def append_body(body_dir: str, data: bytes) -> tuple[str, int, int]:
    """Append one body (with its checksum) to this process's pack: (pack, offset, size)."""
    blob = body_checksum(data) + data
    path, fd = _pack_for(body_dir)
    try:
        # O_APPEND: each write lands at the end of the file as it is then,
        # and the descriptor's offset is that end afterwards
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        end = os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        _stop_writing(body_dir)  # a torn tail is never referenced; the next body starts a new pack
        raise
    return path, end - len(blob), len(blob)


def store_body(body_dir: str, outcome: Outcome) -> Outcome:
    """Put the sanitized body in this process's pack beside the cache; the Outcome keeps none.

    Packs are only ever appended to, so a reader never sees a body change;
    a body is referenced only once it is wholly written.
    """
    article = outcome.article
    if article is None:
        return outcome
    path, at, size = append_body(body_dir, article.body.encode("utf-8", "surrogatepass"))
    return Outcome(dataclasses.replace(article, body="", body_file=path, body_at=at, body_size=size), outcome.problems, outcome.skipped_draft, size)


def _reader(path: str) -> int:
    fd = _READING.get(path)
    if fd is not None:
        _READING.move_to_end(path)
        return fd
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    _READING[path] = fd
    while len(_READING) > READERS_KEPT:
        os.close(_READING.popitem(last=False)[1])
    return fd


def _forget_reader(path: str) -> None:
    fd = _READING.pop(path, None)
    if fd is not None:
        os.close(fd)


def read_body(article: Article) -> str:
    """The article's sanitized body, from memory or from its pack (checked)."""
    if not article.body_file:
        return article.body
    blob = os.pread(_reader(article.body_file), article.body_size, article.body_at)
    data = blob[16:]
    if len(blob) != article.body_size or body_checksum(data) != blob[:16]:
        # removed, so that the next build finds its bodies missing and makes them again
        _forget_reader(article.body_file)
        try:
            os.unlink(article.body_file)
        except FileNotFoundError:
            pass
        raise OSError(errno.EIO, "damaged body in the build cache (removed; build again to remake it)", article.body_file)
    return data.decode("utf-8", "surrogatepass")


def with_body(article: Article) -> Article:
    return dataclasses.replace(article, body=read_body(article), body_file="", body_at=-1, body_size=-1) if article.body_file else article


# The modules that decide what a post becomes (an Outcome). The cache is
# keyed by their source, so a release that changes only rendering or serving
# keeps every sanitized post; tests check this list against their imports.
PROCESS_MODULES = ("pipeline.py", "config.py", "collect.py", "normalize.py", "policy.py", "sanitize.py", "sanitize_nh3.py", "text.py", "model.py", "slug.py", "gcpause.py")
PROCESS_LIBRARIES = ("bleach", "selectolax", "nh3", "PyYAML", "python-frontmatter", "lxml")


def _digest_files(names) -> str:
    digest = hashlib.blake2b(digest_size=16)
    package = Path(__file__).parent
    for name in names:
        file = package / name
        digest.update(name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A digest of this package's source: output keys never outlive the code that rendered them."""
    package = Path(__file__).parent
    return _digest_files(sorted(f.relative_to(package).as_posix() for f in package.rglob("*") if f.is_file() and f.suffix in (".py", ".html", ".xsl")))


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def installed_versions(names) -> dict[str, str]:
    """name → version of each installed distribution, "absent" when not installed.

    Read off the `Name-Version.dist-info` folders on sys.path, first one
    wins as for imports; importlib.metadata, asked for the rest only, took
    30 ms of every rebuild for six names.
    """
    wanted = {_normalized(name): name for name in names}
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info"):
                dist, _, release = entry[: -len(".dist-info")].partition("-")
                name = wanted.get(_normalized(dist))
                if name is not None and release and name not in found:
                    found[name] = release
        if len(found) == len(wanted):
            break
    missing = [name for name in names if name not in found]
    if missing:
        from importlib.metadata import PackageNotFoundError, version

        for name in missing:
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                found[name] = "absent"
    return found


@lru_cache(maxsize=1)
def process_fingerprint() -> str:
    """A digest of what turns a post into an Outcome: that code and the libraries it leans on."""
    versions = installed_versions(PROCESS_LIBRARIES)
    return _digest_files(PROCESS_MODULES) + ";" + ",".join(f"{name}={versions[name]}" for name in PROCESS_LIBRARIES)


def _job_fingerprint(job: Job) -> str:
    return hashlib.blake2b(pickle.dumps((CACHE_FORMAT, __version__, process_fingerprint(), job)), digest_size=16).hexdigest()


class Cache:
    """Outcomes keyed by (file content, path, settings): never stale by construction.

    On disk: a base pickle plus a journal of small updates appended after it,
    so a build that changed a few posts writes a few kilobytes instead of the
    whole cache; the base is rewritten once the journal has grown. A cache
    that fails to load (corrupt, truncated, from another version) is
    reported and rebuilt; a torn last journal frame (a build killed while
    appending) only loses that frame's entries, which are made again.
    """

    def __init__(self, directory: Path | None, job: Job):
        self.directory = directory
        self.fingerprint = _job_fingerprint(job)
        self.entries: dict[str, Outcome] = {}
        self.moved: dict[str, Outcome] = {}  # entries whose bodies the last save moved to another pack
        self.problem: str | None = None
        # rel → (stat signature, content key, when that pair was seen): a
        # pair is trusted only for files last changed well before it was seen
        self.stats: dict[str, tuple] = {}
        self._saved_keys: set[str] = set()
        self._saved_stats: dict[str, tuple] = {}
        self._journal_bytes = 0
        self._base_bytes = 0
        if directory is not None:
            with cyclic_gc_paused():
                self._load()
        self._saved_keys = set(self.entries)
        self._saved_stats = dict(self.stats)

    @property
    def file(self) -> Path | None:
        return None if self.directory is None else self.directory / f"outcomes-{self.fingerprint}.pickle"

    @cached_property
    def body_dir(self) -> str | None:
        # absolute: stored bodies are found wherever the build runs from
        return None if self.directory is None else os.path.abspath(self.directory / f"bodies-{self.fingerprint}")

    def has_body(self, outcome: Outcome, pack_sizes: dict[str, int]) -> bool:
        """The stored body of a cached Outcome is there (its pack holds its bytes).

        `pack_sizes` memoizes the packs' sizes for one build: a handful of
        stats however many posts there are. The content is checked when read.
        """
        article = outcome.article
        if article is None or outcome.body_bytes < 0:
            return True  # no article, or its body is in the Outcome itself
        if self.body_dir is None:
            return False
        pack = self.body_file_of(article)
        size = pack_sizes.get(pack)
        if size is None:
            try:
                size = os.stat(pack).st_size
            except OSError:
                size = -1
            pack_sizes[pack] = size
        return 0 <= article.body_at and article.body_at + article.body_size <= size

    @cached_property
    def _body_prefix(self) -> str:
        assert self.body_dir is not None
        return self.body_dir + "/"

    def body_file_of(self, article: Article) -> str:
        """Where the pack holding a cached article's body is now."""
        if article.body_file.startswith(self._body_prefix):
            return article.body_file
        # the cache folder was moved, or the build runs from elsewhere
        return self._body_prefix + os.path.basename(article.body_file)

    @property
    def journal(self) -> Path | None:
        return None if self.directory is None else self.directory / f"outcomes-{self.fingerprint}.journal"

    def _load(self) -> None:
        file, journal = self.file, self.journal
        assert file is not None and journal is not None
        try:
            with open(file, "rb") as handle:
                data = pickle.load(handle)
                self._base_bytes = handle.tell()
        except FileNotFoundError:
            journal.unlink(missing_ok=True)
            return
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError, TypeError, ValueError, MemoryError) as exc:
            self.problem = f"cache unreadable ({type(exc).__name__}): rebuilt from the posts"
            return
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint or not isinstance(data.get("entries"), dict) or not isinstance(data.get("stats"), dict):
            self.problem = "cache belongs to other settings or is damaged: rebuilt from the posts"
            return
        self.entries = data["entries"]
        self.stats = data["stats"]
        try:
            handle = open(journal, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problem = f"cache journal unreadable ({exc.strerror}): its updates are made again"
            return
        with handle:
            while True:
                try:
                    frame = pickle.load(handle)
                except EOFError:
                    break
                except (OSError, pickle.UnpicklingError, AttributeError, ImportError, IndexError, TypeError, ValueError, MemoryError):
                    self.problem = "cache journal damaged (a build was stopped while writing it?): its last updates are made again"
                    break
                if not (isinstance(frame, dict) and frame.get("fingerprint") == self.fingerprint):
                    self.problem = "cache journal does not belong to this cache: its updates are made again"
                    break
                self.entries.update(frame["put"])
                for key in frame["drop"]:
                    self.entries.pop(key, None)
                self.stats.update(frame["stats"])
                for rel in frame["stats_drop"]:
                    self.stats.pop(rel, None)
            self._journal_bytes = handle.tell()

    def record_stats(self, stats: dict[str, tuple]) -> None:
        self.stats = stats

    @staticmethod
    def key(raw: bytes, rel: str) -> str:
        digest = hashlib.sha256(b"feeds-post\0")  # SHA-256 for speed: see body_checksum
        digest.update(raw)
        return digest.hexdigest()[:40] + ":" + rel

    def get(self, key: str) -> Outcome | None:
        return self.entries.get(key)

    def put(self, key: str, outcome: Outcome) -> None:
        self.entries[key] = outcome

    def save(self, live_keys: set[str]) -> str | None:
        """Write what changed, keeping only the entries still in use."""
        self.moved = {}
        if self.directory is None:
            return None
        released: set[str] = set()  # packs of the entries dropped now
        if len(self.entries) != len(live_keys) or not live_keys.issuperset(self.entries):
            released = {self._pack_of(v) for k, v in self.entries.items() if k not in live_keys} - {""}
            self.entries = {k: v for k, v in self.entries.items() if k in live_keys}
        entries, saved = self.entries, self._saved_keys
        put = {k: entries[k] for k in entries.keys() - saved}
        drop = list(saved - entries.keys())
        stats, saved_stats = self.stats, self._saved_stats
        stats_put = {rel: value for rel, value in stats.items() if saved_stats.get(rel) != value}
        stats_drop = list(saved_stats.keys() - stats.keys())
        if not (put or drop or stats_put or stats_drop):
            return None
        file, journal = self.file, self.journal
        assert file is not None and journal is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            frame = None
            # a new base when bodies moved (entries name other packs), and
            # at once, without pickling the entries twice, when there is no
            # base yet or a quarter of the entries changed (the frame would
            # be too big for the journal anyway)
            if not self._tidy_packs(released) and file.exists() and 4 * len(put) <= len(entries):
                frame = pickle.dumps({"fingerprint": self.fingerprint, "put": put, "drop": drop, "stats": stats_put, "stats_drop": stats_drop}, protocol=pickle.HIGHEST_PROTOCOL)
            if frame is not None and self._journal_bytes + len(frame) < max(self._base_bytes // 4, 1 << 20):
                with open(journal, "ab") as handle:
                    handle.write(frame)
                self._journal_bytes += len(frame)
            else:
                self._write_base()
        except OSError as exc:
            return f"cannot write cache: {exc.strerror or exc}"
        self._saved_keys = set(entries)
        self._saved_stats = dict(stats)
        return None

    def _pack_of(self, outcome: Outcome) -> str:
        article = outcome.article
        if article is None or not article.body_file or outcome.body_bytes < 0:
            return ""
        return self.body_file_of(article)

    def _tidy_packs(self, released: set[str]) -> bool:
        """Remove packs nothing uses; copy the live bodies out of mostly-dead or
        small packs into one new pack. True when entries were changed.

        A pack in use until now (`released`) goes at once; any other pack not
        in use is left alone for PACK_GRACE_SECONDS: it may belong to a build
        of the same cache still running in another process.
        """
        body_dir = self.body_dir
        if body_dir is None:
            return False
        try:
            names = [name for name in os.listdir(body_dir) if name.startswith(PACK_PREFIX)]
        except FileNotFoundError:
            return False
        live: dict[str, int] = {}
        for outcome in self.entries.values():
            pack = self._pack_of(outcome)
            if pack:
                live[pack] = live.get(pack, 0) + outcome.body_bytes
        sizes: dict[str, int] = {}
        now = time.time()
        for name in names:
            path = body_dir + "/" + name
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if path in live:
                sizes[path] = st.st_size
            elif path in released or now - st.st_mtime > PACK_GRACE_SECONDS:
                os.unlink(path)
        small = [p for p, size in sizes.items() if size < SMALL_PACK_BYTES]
        sparse = [p for p, size in sizes.items() if live[p] * 2 < size]
        dead = sum(sizes.values()) - sum(live[p] for p in sizes)
        if len(small) <= MAX_SMALL_PACKS and not (sparse and dead > max(sum(live.values()), SMALL_PACK_BYTES)):
            return False
        chosen = set(small) | set(sparse)
        _stop_writing(body_dir)  # this process's pack may be one of them
        moved: dict[str, Outcome] = {}
        for key, outcome in self.entries.items():
            pack = self._pack_of(outcome)
            if pack not in chosen:
                continue
            article = outcome.article
            data = read_body(dataclasses.replace(article, body_file=pack)).encode("utf-8", "surrogatepass")
            path, at, size = append_body(body_dir, data)
            moved[key] = Outcome(dataclasses.replace(article, body_file=path, body_at=at, body_size=size), outcome.problems, outcome.skipped_draft, size)
        _stop_writing(body_dir)
        self.entries.update(moved)
        self.moved.update(moved)
        for path in chosen:
            _forget_reader(path)
            os.unlink(path)
        return True

    def _write_base(self) -> None:
        file, journal = self.file, self.journal
        assert self.directory is not None and file is not None and journal is not None
        for old in self.directory.glob("outcomes-*"):
            if old not in (file, journal):
                old.unlink(missing_ok=True)
        for old in self.directory.glob("bodies-*"):
            if str(old) != self.body_dir:
                import shutil  # here: it imports three compression modules

                shutil.rmtree(old, ignore_errors=True)  # from other settings or code
        tmp = file.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            pickle.dump({"fingerprint": self.fingerprint, "entries": self.entries, "stats": self.stats}, handle, protocol=pickle.HIGHEST_PROTOCOL)
            self._base_bytes = handle.tell()
        journal.unlink(missing_ok=True)
        os.replace(tmp, file)
        self._journal_bytes = 0


# Packs: one nothing uses is removed once this old (it may be a running
# build's); past this many small ones, or when more than half of all bytes
# are dead, the live bodies are copied into a new pack.
PACK_GRACE_SECONDS = 3600
SMALL_PACK_BYTES = 1 << 20
MAX_SMALL_PACKS = 16


# A stat entry is trusted only for files last changed this long before the
# entry was recorded: a write in the same clock tick as the recording could
# otherwise leave size, mtime and ctime all unchanged (git's "racy" case).
RACY_SECONDS = 2.0


class Listed(NamedTuple):
    """One matching file as the build sees it before processing."""

    path: str
    rel: str
    display: str  # the path as messages show it
    key: str | None  # content key, when known without processing the file
    signature: tuple | None  # stat facts; None when the file cannot be read
    record: tuple | None = None  # the cache's (signature, key, seen) when it vouches for the file


def read_sources(config: Config, cache: "Cache | None" = None, scan=None) -> tuple[list[Listed], list[Problem]]:
    """Every matching file, with its content key where that is known cheaply.

    A file whose stat signature (inode, size, mtime, ctime: any write changes
    ctime) matches the cache's record is not read: its key is known. Any
    other file is read and keyed by content only when the cache could hold
    it under that key (a touched or copied post is not processed again);
    with an empty cache the workers read and key it themselves. The bytes
    are never kept here. `scan` is a scan_sources() result to reuse.
    """
    found, problems = scan if scan is not None else scan_sources(config.source.dir, config.source.pattern)
    problems = list(problems)
    prefix = str(Path.cwd()).rstrip("/") + "/"
    out: list[Listed] = []
    stats = cache.stats if cache is not None else {}
    entries = cache.entries if cache is not None else {}
    for source in found:
        rel, text = source.rel, source.path
        display = text[len(prefix) :] if text.startswith(prefix) else text
        st = source.stat
        if st is None:
            problems.append(Problem(display, None, ERROR, f"cannot read post: {source.error}"))
            out.append(Listed(text, rel, display, None, None))
            continue
        signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        known = stats.get(rel)
        if known is not None and known[0] == signature and st.st_ctime < known[2] - RACY_SECONDS and known[1] in entries:
            out.append(Listed(text, rel, display, known[1], signature, known))
            continue
        if st.st_size > MAX_FILE_BYTES:
            problems.append(Problem(display, None, ERROR, f"file is {st.st_size} bytes; the limit is {MAX_FILE_BYTES}"))
            out.append(Listed(text, rel, display, None, None))
            continue
        key = None
        if entries:
            try:
                with open(text, "rb") as handle:
                    key = Cache.key(handle.read(), rel)
            except OSError as exc:
                problems.append(Problem(display, None, ERROR, f"cannot read post: {exc.strerror or exc}"))
                out.append(Listed(text, rel, display, None, None))
                continue
        out.append(Listed(text, rel, display, key, signature))
    return out, problems


def load_articles(
    config: Config,
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cache: Cache | None = None,
    scan=None,
    meanwhile: Callable[[], None] | None = None,
) -> LoadResult:
    """`meanwhile`: called once in this process while worker processes load the posts that changed (or at once when none did)."""
    started = time.perf_counter()
    job = make_job(config)
    if cache is None:
        cache = Cache(config.build.cache_dir if use_cache else None, job)
    seen = time.time()  # before any file is read: the racy-write guard errs on the safe side
    sources, problems = read_sources(config, cache, scan)
    if cache.problem:
        problems.append(Problem(str(cache.directory), None, WARNING, cache.problem))
        cache.problem = None

    outcomes: dict[int, Outcome] = {}
    keys: dict[int, str] = {}
    fresh: dict[str, tuple] = {}  # the stat records this build vouches for
    todo: list[int] = []
    pack_sizes: dict[str, int] = {}
    for index, source in enumerate(sources):
        if source.signature is None:
            continue
        hit = cache.get(source.key) if source.key is not None else None
        if hit is not None and not cache.has_body(hit, pack_sizes):
            hit = None  # its body is missing from its pack: made again
        if hit is None:
            todo.append(index)
            continue
        keys[index] = source.key
        outcomes[index] = _redisplay(hit, source.display)
        fresh[source.rel] = source.record or (source.signature, source.key, seen)

    shared: dict = {}

    def finish(index: int, key: str | None, outcome: Outcome) -> None:
        if outcome.article is not None:
            _share_values(outcome.article, shared)
        outcomes[index] = outcome
        if key is not None:
            source = sources[index]
            keys[index] = key
            cache.put(key, outcome)
            fresh[source.rel] = (source.signature, key, seen)

    total = len(todo)
    body_dir = cache.body_dir
    if progress:
        progress(0, total)
    workers = config.build.worker_count
    if total >= INLINE_LIMIT and workers > 1:
        _load_in_workers(todo, sources, job, body_dir, workers, finish, progress, meanwhile)
    elif todo:
        _load_in_a_child(todo, sources, job, body_dir, finish, progress, meanwhile)
    elif meanwhile:
        meanwhile()

    cache.record_stats(fresh)
    racy_after = (seen - RACY_SECONDS) * 1e9
    recent_keys = {
        sources[index].rel: key for index, key in keys.items() if max(sources[index].signature[3:5]) >= racy_after
    }
    error = cache.save(set(keys.values()))
    if error:
        problems.append(Problem(str(cache.directory), None, WARNING, error))
    # saving may have moved bodies out of small packs and removed those:
    # this build's articles are read from where their bodies are now
    if cache.moved:
        for index, key in keys.items():
            moved = cache.moved.get(key)
            if moved is not None:
                outcomes[index] = _redisplay(moved, sources[index].display)

    articles: list[Article] = []
    drafts = 0
    future = datetime.now(timezone.utc) + timedelta(days=1)
    seen_ids: dict[str, str] = {}
    seen_paths: dict[str, str] = {}
    for index in sorted(outcomes):
        outcome = outcomes[index]
        display = sources[index].display
        problems.extend(outcome.problems)
        if outcome.skipped_draft:
            drafts += 1
        article = outcome.article
        if article is None:
            continue
        if article.id in seen_ids:
            problems.append(Problem(display, None, ERROR, f"id {article.id!r} is already used by {seen_ids[article.id]}: not published"))
            continue
        page = article.page.casefold()
        if page in seen_paths:
            problems.append(Problem(display, None, ERROR, f"id {article.id!r} gives the same page path as {seen_paths[page]}: not published"))
            continue
        seen_ids[article.id] = display
        seen_paths[page] = display
        if article.date > future:
            problems.append(future_warning(article, display))
        if body_dir and outcome.body_bytes >= 0:
            where = cache.body_file_of(article)
            if article.body_file != where:
                article = dataclasses.replace(article, body_file=where)
        articles.append(article)

    return LoadResult(
        articles=articles,
        problems=problems,
        files=len(sources),
        drafts=drafts,
        processed=total,
        seconds=time.perf_counter() - started,
        recent_keys=recent_keys,
        cache_dir=cache.directory,
    )


def _load_in_workers(todo: list[int], sources: list, job: Job, body_dir: str | None, workers: int, finish, progress, meanwhile=None) -> None:
    """process_file for every source in `todo`, in a pool of worker processes.

    A worker that dies takes the pool with it and the results not yet
    received: the posts the workers were working on are then processed
    again one by one, each in a process of its own (a post that crashes
    that one too is reported and not published), and the rest in a new pool.
    """
    global _MARKS
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    total = len(todo)
    done = 0
    # the workers fork with the engine and YAML already imported: their
    # modules are then shared by all of them instead of loaded once in each
    get_sanitizer(job.engine, job.policy)
    front_matter_yaml()
    marks = mmap.mmap(-1, len(sources))
    _MARKS = marks  # forked workers share the mapping
    try:
        pending = todo
        while pending:
            received: set[int] = set()
            batch_size = max(8, min(64, len(pending) // (workers * 8) or 8))
            batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
            try:
                with ProcessPoolExecutor(max_workers=workers, initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
                    futures = [
                        (batch, pool.submit(_process_batch, [(i, sources[i].path, sources[i].rel, sources[i].display) for i in batch], job, body_dir))
                        for batch in batches
                    ]
                    if meanwhile:
                        meanwhile()
                        meanwhile = None
                    for batch, future in futures:
                        for index, (key, outcome) in zip(batch, future.result()):
                            finish(index, key, outcome)
                        received.update(batch)
                        done += len(batch)
                        if progress:
                            progress(done, total)
                pending = []
            except BrokenProcessPool:
                lost = [index for index in pending if index not in received]
                suspects = [index for index in lost if marks[index] == _WORKING]
                if not suspects:
                    raise  # no post was being processed: nothing to isolate
                for index in suspects:
                    source = sources[index]
                    finish(index, *process_file_alone(source.path, source.rel, source.display, job, body_dir))
                    done += 1
                    if progress:
                        progress(done, total)
                pending = [index for index in lost if marks[index] != _WORKING]
    finally:
        _MARKS = None
        marks.close()


def _load_in_a_child(todo: list[int], sources: list, job: Job, body_dir: str | None, finish, progress, meanwhile=None) -> None:
    """process_file for a few sources in one forked process, so that a crash cannot take the build down.

    Starting a pool costs more than these posts take; a fork costs a few
    milliseconds. Results come back one by one: when the child dies, the post
    it was on is processed again alone (and reported if it crashes that
    process too), and a new child goes on with the rest.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    total = len(todo)
    done = 0

    def finished(index: int, result: tuple) -> None:
        nonlocal done
        finish(index, *result)
        done += 1
        if progress and (done % 16 == 0 or done == total):
            progress(done, total)

    pending = todo
    while pending:
        receive, send = context.Pipe(duplex=False)
        batch = [(index, sources[index].path, sources[index].rel, sources[index].display) for index in pending]
        child = context.Process(target=_process_all_and_send, args=(send, batch, job, body_dir), daemon=True)
        child.start()
        send.close()
        if meanwhile:
            meanwhile()
            meanwhile = None
        received = 0
        try:
            while received < len(pending):
                try:
                    index, result = receive.recv()
                except EOFError:  # the child died
                    break
                if index == "raise":
                    raise result
                finished(index, result)
                received += 1
        finally:
            receive.close()
            child.join()
        if received == len(pending):
            return
        suspect = pending[received]
        source = sources[suspect]
        finished(suspect, process_file_alone(source.path, source.rel, source.display, job, body_dir))
        pending = pending[received + 1 :]


def _share_values(article: Article, shared: dict) -> None:
    """Make an article's category paths, author and body pack the objects other articles already hold, when equal.

    Posts of one category share them; as separate copies (each worker
    result brings its own) they were an eighth of a large site's metadata
    in memory, and the cache pickles a shared object once. Only the
    identity of equal values changes, so the frozen article is still the
    same value.
    """
    for name in ("categories", "author", "body_file"):
        value = getattr(article, name)
        kept = shared.setdefault(value, value)
        if kept is not value:
            object.__setattr__(article, name, kept)
    if article.updated is not article.date and article.updated == article.date and article.updated.tzinfo is article.date.tzinfo:
        object.__setattr__(article, "updated", article.date)


def future_warning(article: Article, display: str) -> Problem:
    return Problem(display, None, WARNING, f"date {article.date.isoformat()} is in the future: published anyway")


def _redisplay(outcome: Outcome, display: str) -> Outcome:
    """Cached problems name the file as it was then; name it as it is now."""
    if not outcome.problems or all(p.path == display for p in outcome.problems):
        return outcome
    return Outcome(
        outcome.article,
        tuple(Problem(display, p.line, p.severity, p.message) for p in outcome.problems),
        outcome.skipped_draft,
        outcome.body_bytes,
    )
