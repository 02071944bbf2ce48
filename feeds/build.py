"""The whole pipeline, and the static writer.

The output folder is a symlink to a complete build under a sibling
`.<name>.builds/` folder, switched with one atomic rename: a reader (nginx,
a CDN sync, a person) sees the old tree or the new one, never a mix, and a
build killed at any moment leaves the previous tree untouched. Files whose
bytes did not change are hard-linked from the previous build instead of
written again, so they keep their modification times (stable
Last-Modified/ETag for web servers) and a small change writes little.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .catalog import Catalog, build_catalog
from .config import Config
from .gcpause import cyclic_gc_paused
from .model import ERROR, Pending, Problem, Resource
from .pipeline import Cache, LoadResult, load_articles
from .served import SWITCHES_NAME, digest_of, switching

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 2  # path → [key, digest, kind, last modified]
GZIP_KINDS = ("atom", "rss", "json", "html", "opml", "xsl")
GZIP_MIN_BYTES = 512


class OutputError(Exception):
    """The output folder cannot be written; the previous output is kept."""


@dataclass
class SiteState:
    """Everything one run of the pipeline produced."""

    load: LoadResult
    catalog: Catalog
    problems: list[Problem]

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == ERROR)

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors


def run_pipeline(config: Config, *, use_cache: bool = True, progress: Callable[[int, int], None] | None = None, cache: Cache | None = None, scan=None, render_next: bool = True, ahead: "OutputAhead | None" = None) -> SiteState:
    """`scan`: a scan_sources() result to reuse instead of walking the source folder again.

    `render_next`: the caller renders the site after this, so the renderer
    is imported while worker processes load the posts. `ahead`: the output
    folder the caller writes next, whose manifests are read meanwhile too.
    """

    def meanwhile() -> None:
        load_renderer()
        if ahead is not None:
            ahead.read()

    with cyclic_gc_paused():
        load = load_articles(config, use_cache=use_cache, progress=progress, cache=cache, scan=scan, meanwhile=meanwhile if render_next else None)
        catalog = build_catalog(load.articles, config.categories.slug_map)
    problems = list(load.problems) + [
        Problem(str(config.path or "config.toml"), p.line, p.severity, p.message) for p in catalog.problems
    ]
    return SiteState(load=load, catalog=catalog, problems=problems)


def load_renderer() -> None:
    """Import the renderer (jinja2, feedgen and dateutil: about a tenth of a second)."""
    from .render import site  # noqa: F401


def plan_site(config: Config, state: SiteState) -> Iterator[Pending]:
    """Every file to publish, keyed, rendered only on demand."""
    from .render.site import SiteRenderer

    return SiteRenderer(config, state.catalog, cache_dir=state.load.cache_dir).plan()


def render_resources(config: Config, state: SiteState) -> Iterator[tuple[str, Resource]]:
    from .render.site import SiteRenderer

    return SiteRenderer(config, state.catalog, cache_dir=state.load.cache_dir).render()


@dataclass
class WriteReport:
    files: int = 0
    written: int = 0
    linked: int = 0
    skipped: int = 0  # files not even rendered: same inputs as the previous build
    up_to_date: bool = False  # nothing changed: no new build was made
    bytes: int = 0
    target: Path | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _builds_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.builds"


def _safe_relative(site_path: str) -> str:
    relative = site_path.lstrip("/")
    # an empty, "." or ".." part, found without splitting every path of the site
    bounded = "/" + relative + "/"
    if "//" in bounded or "/./" in bounded or "/../" in bounded or "\x00" in relative:
        raise OutputError(f"refusing to write unsafe path {site_path!r}")
    return relative


def _manifest_file(build: Path) -> Path:
    return build.with_name(build.name + MANIFEST_SUFFIX)


def _load_manifest(build: Path) -> dict[str, list]:
    """path → [input key, content digest, kind, last modified] of a build ({} if unusable).

    The "" entry holds the build options.
    """
    try:
        # bytes, decoded by json itself: a text handle decodes through a
        # Python-level codec and took as long again as the parse
        with open(_manifest_file(build), "rb") as handle, cyclic_gc_paused():
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list) and (len(v) == 4 or k == "")}


def _write_manifest(build: Path, manifest: dict[str, list], text: str | None = None) -> str:
    """Write the manifest (or `text`, when that is already its JSON) → its JSON."""
    tmp = build.with_name(build.name + MANIFEST_SUFFIX + ".tmp")
    if text is None:
        # dumps, not dump: only the one-shot encoder runs in C. It makes a
        # (path, entry) tuple per file, each of which counted toward a
        # collection of everything allocated since the last one (20 ms of
        # a one-post rebuild at 10,000 posts)
        with cyclic_gc_paused():
            text = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, _manifest_file(build))
    return text


def _current_build(out: Path) -> Path | None:
    if not out.is_symlink():
        return None
    target = Path(os.readlink(out))
    build = target if target.is_absolute() else (out.parent / target)
    return build if build.is_dir() else None


def _new_name() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.perf_counter_ns() % 1000000:06d}"


def _find_spare(builds: Path, live: Path | None, options: list) -> tuple[Path, dict[str, list]] | None:
    """An earlier, complete, no longer published build to update in place."""
    try:
        entries = sorted(builds.iterdir(), key=lambda p: p.name, reverse=True)
    except OSError:
        return None
    for entry in entries:
        if entry.name.endswith(MANIFEST_SUFFIX) or entry.name.startswith("previous-folder-") or not entry.is_dir() or entry.is_symlink():
            continue
        if live is not None and entry.name == live.name:
            continue
        manifest = _load_manifest(entry)
        if manifest.get("") == options:
            return entry, manifest
    return None


def _identity(manifest: Path) -> tuple | None:
    try:
        st = os.stat(manifest)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class OutputAhead:
    """The published build and the spare of an output folder, with their manifests, read before write_tree needs them.

    A one-post rebuild waits about a tenth of a second for the process that
    loads the changed post; parsing the two manifests then (two 2.3 MB
    JSON files at 10,000 posts) takes them off the rebuild's path.
    write_tree uses what was read only if the link still names the same
    build and both manifest files are the very ones read; otherwise it
    reads them again, under its lock.
    """

    def __init__(self, out: Path, gzip_siblings: bool):
        self.out = out.absolute()
        self.options = _options(gzip_siblings)
        self.found: tuple | None = None  # (previous, its manifest, (spare, its manifest), identities)

    def read(self) -> None:
        previous = _current_build(self.out)
        if previous is None:
            return  # a first build: nothing to read
        manifest = _load_manifest(previous)
        if manifest.get("") != self.options:
            return
        spare = _find_spare(_builds_dir(self.out), previous, self.options)
        if spare is None:
            return  # found again under the lock: where another build may have left one
        identities = (_identity(_manifest_file(previous)), _identity(_manifest_file(spare[0])))
        if None not in identities:
            self.found = (previous, manifest, spare, identities)

    def take(self, previous: Path | None) -> tuple[dict[str, list], tuple[Path, dict[str, list]]] | None:
        """(the published manifest, the spare and its manifest) if still those of the folder as it is now; each is given out once."""
        found, self.found = self.found, None
        if found is None or previous is None or found[0] != previous:
            return None
        _, manifest, spare, identities = found
        if (_identity(_manifest_file(previous)), _identity(_manifest_file(spare[0]))) != identities:
            return None
        return manifest, spare


def _options(gzip_siblings: bool) -> list:
    return ["options", f"gzip={int(gzip_siblings)}", f"format={MANIFEST_FORMAT}"]


class _Lock:
    """One build at a time per output folder (a CLI build beside a live server's builder)."""

    def __init__(self, builds: Path):
        import fcntl

        self._fcntl = fcntl
        self.handle = open(builds / ".lock", "a+b")

    def __enter__(self):
        self._fcntl.flock(self.handle, self._fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self._fcntl.flock(self.handle, self._fcntl.LOCK_UN)
        self.handle.close()


def write_tree(out: Path, resources: Iterable[Pending | tuple[str, Resource]], *, gzip_siblings: bool = False, spare: bool = True, workers: int | None = None, ahead: OutputAhead | None = None) -> WriteReport:
    """Make `out` a complete, current build, switched in with one atomic rename.

    Two build folders alternate. The published one is never touched; the
    other (the build before it) is renamed and brought up to date in place:
    a file whose input key it already has stays as it is, one the published
    build has is hard-linked from there, and only the rest is rendered and
    written. A small change therefore costs little however large the site.
    Files are replaced, never rewritten, so an inode shared by both builds
    is never changed under a reader. `ahead`: this folder's manifests, read
    earlier (used only if they are still the folder's).
    """
    started = time.perf_counter()
    report = WriteReport()
    out = out.absolute()
    builds = _builds_dir(out)
    try:
        builds.mkdir(parents=True, exist_ok=True)
        lock = _Lock(builds)
    except OSError as exc:
        raise OutputError(f"{builds}: cannot create build folder: {exc.strerror}") from None
    with lock:
        _write_tree_locked(out, builds, resources, gzip_siblings, spare, report, workers or os.cpu_count() or 1, ahead)
    report.seconds = time.perf_counter() - started
    return report


def _write_tree_locked(out: Path, builds: Path, resources, gzip_siblings: bool, make_spare: bool, report: WriteReport, workers: int, ahead: OutputAhead | None) -> None:
    previous = _current_build(out)
    options = _options(gzip_siblings)
    known = ahead.take(previous) if ahead is not None and ahead.options == options else None
    if known is not None:
        old_manifest, found = known
    else:
        old_manifest = _load_manifest(previous) if previous else {}
        if old_manifest.get("") != options:
            old_manifest = {}
        found = _find_spare(builds, previous, options)

    items = [_as_pending(item) for item in resources] if old_manifest else resources
    if old_manifest and len(items) == len(old_manifest) - 1 and all(
        item.key and old_manifest.get(item.path, ("",))[0] == item.key for item in items
    ):
        # nothing changed: the published tree stays as it is, untouched;
        # only what a killed build may have left is cleared away
        _prune(builds, keep={previous, found[0]} if found else {previous})
        report.files = report.skipped = len(items)
        report.target = previous
        report.up_to_date = True
        return

    build = builds / _new_name()
    in_place: dict[str, list] = {}
    # the first build also lays out the folder the next build will update in
    # place (directories and hard links only), so that no later build has to
    # make a whole tree; its files are linked there as they are written
    spare = builds / (_new_name() + "-spare") if make_spare and previous is None and found is None else None
    try:
        if found is not None:
            spare_dir, in_place = found
            # from here on the folder is work in progress: without a manifest
            # it is never mistaken for a complete build, even after a crash
            _manifest_file(spare_dir).unlink()
            os.rename(spare_dir, build)
        else:
            build.mkdir()
        if spare is not None:
            try:
                spare.mkdir()
            except OSError:
                spare = None
        manifest, spared = _fill(build, previous, old_manifest, in_place, items, gzip_siblings, report, workers, spare)
        manifest[""] = options
        written = _write_manifest(build, manifest)
        _switch(out, build, report)
    except BaseException as exc:
        for unfinished in (build, spare):
            if unfinished is not None:
                shutil.rmtree(unfinished, ignore_errors=True)
        _manifest_file(build).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            where = getattr(exc, "filename", None) or build
            raise OutputError(f"{where}: cannot write output ({exc.strerror or exc}); the previous output is unchanged") from None
        raise
    _prune(builds, keep={build, previous, spare} - {None})
    if spare is not None:
        spared[""] = options
        try:
            # every file linked there (the usual case): the same manifest, not encoded again (0.8 s at 100,000 posts)
            _write_manifest(spare, spared, written if len(spared) == len(manifest) else None)
        except OSError:
            shutil.rmtree(spare, ignore_errors=True)  # only an optimization: the next build makes a tree of its own
    report.target = build


def _fill(build: Path, previous: Path | None, old: dict, in_place: dict, items, gzip_siblings: bool, report: WriteReport, workers: int, spare: Path | None = None) -> tuple[dict[str, list], dict[str, list]]:
    """Bring `build` up to date: (its manifest, that of `spare`).

    `spare` (a first build only, where every file is written): a folder in
    which each render process also hard-links each file it writes, so that
    the next build has a tree to update in place without a serial copy
    after this one. Its manifest lists only the files linked there.
    """
    root = str(build)
    spare_root = str(spare) if spare is not None else None
    spared: dict[str, list] = {}
    prev_root = str(previous) if previous is not None else None
    manifest: dict[str, list] = {}
    fresh = not in_place  # a new, empty folder: nothing to replace
    todo: list[tuple] = []
    for item in items:
        item = _as_pending(item)
        site_path = item.path
        report.files += 1
        here = in_place.pop(site_path, None)
        if item.key and here is not None and here[0] == item.key:
            manifest[site_path] = here  # already there, under a path checked when it was written
            report.skipped += 1
            continue
        relative = _safe_relative(site_path)
        before = old.get(site_path)
        if item.key and before is not None and before[0] == item.key and prev_root is not None:
            if _link_from(prev_root, relative, root + "/" + relative, gzip_siblings):
                manifest[site_path] = before
                report.skipped += 1
                report.linked += 1
                continue
        todo.append((site_path, item, here, before))  # its path below a root is made again when written: a string less per file
    for site_path in in_place:
        if site_path:
            relative = _safe_relative(site_path)
            _remove(root + "/" + relative)
            _remove(root + "/" + relative + ".gz")
            _remove_empty_parents(root, relative)
    absorbing = threading.Lock()

    def absorb(part: list[tuple]) -> None:
        """Record a task's results as they come (a render child's come on a thread of their own)."""
        with absorbing:
            for index, digest, kind, stamp, outcome, size, linked_in_spare in part:
                site_path, item = todo[index][0], todo[index][1]
                # the path and key are this process's own objects; a child's copies would double them
                entry = [item.key, digest, sys.intern(kind), stamp]
                manifest[site_path] = entry
                if linked_in_spare:
                    spared[site_path] = entry
                report.bytes += size
                if outcome == "written":
                    report.written += 1
                elif outcome == "linked":
                    report.linked += 1

    _render_all(todo, (root, prev_root, spare_root), gzip_siblings, fresh, workers, absorb)
    return manifest, spared


# Below this many files to render, forking costs more than it saves.
RENDER_FORK_MIN = 256
_RENDER_JOBS: tuple = ()  # set just before forking: the children inherit it


def _render_one(job, roots: tuple, gzip_siblings: bool, fresh: bool) -> tuple[str, str, float | None, str, int, bool]:
    """Make and place one file → (digest, kind, stamp, outcome, size, whether linked into the spare).

    `roots`: the folders of the build being written, of the published build
    (or None) and of the spare (or None).
    """
    site_path, item, here, before = job
    root, prev_root, spare_root = roots
    relative = site_path.lstrip("/")  # checked by _safe_relative when planned
    target = root + "/" + relative
    resource = item.render()
    digest = digest_of(resource.body)
    stamp = resource.last_modified.timestamp() if resource.last_modified is not None else None
    kind = resource.kind
    size = len(resource.body)
    if here is not None and here[1] == digest and here[3] == stamp:
        return digest, kind, stamp, "kept", size, False  # the same bytes are already in place
    if before is not None and before[1] == digest and before[3] == stamp and prev_root is not None:
        if _link_from(prev_root, relative, target, gzip_siblings):
            return digest, kind, stamp, "linked", size, False
    _write_file(target, resource.body, stamp, fresh)
    if not fresh:
        _remove(target + ".gz")
    zipped = gzip_siblings and resource.kind in GZIP_KINDS and len(resource.body) >= GZIP_MIN_BYTES
    if zipped:
        _write_file(target + ".gz", gzip.compress(resource.body, compresslevel=9, mtime=0), stamp, fresh)
    return digest, kind, stamp, "written", size, spare_root is not None and _link_spare(target, spare_root + "/" + relative, zipped)


def _link_spare(target: str, spare_target: str, zipped: bool) -> bool:
    """Hard-link a file just written (and its .gz) into the spare folder; False if not possible."""
    try:
        _make_folder(os.path.dirname(spare_target))
        os.link(target, spare_target)
        if zipped:
            os.link(target + ".gz", spare_target + ".gz")
    except OSError:
        return False  # only an optimization: the next build writes this file itself
    return True


def _render_claimed(deliver: Callable[[list], None]) -> None:
    """Render task after task, each claimed from the counter all render processes share, until none is left.

    Each task's results go to `deliver` as soon as it is done.
    """
    jobs, tasks, roots, gzip_siblings, fresh, claimed = _RENDER_JOBS
    while True:
        with claimed.get_lock():
            task = claimed.value
            claimed.value = task + 1
        if task >= len(tasks):
            return
        deliver([(i, *_render_one(jobs[i], roots, gzip_siblings, fresh)) for i in tasks[task]])


def _render_child(send, parent: int) -> None:
    from .pipeline import _exit_with_parent

    _exit_with_parent(parent)
    # results go back task by task: kept here and sent in one piece at the
    # end, they were the top of a 100,000-post build's memory (the list, its
    # pickle and the parent's copy, all at once)
    try:
        _render_claimed(lambda part: send.send(("part", part)))
        reply = ("done", None)
    except Exception as exc:  # sent to the parent, which raises it as its own
        reply = ("failed", exc)
    try:
        send.send(reply)
    except (TypeError, AttributeError, pickle.PicklingError):  # an exception that cannot be pickled
        send.send(("failed", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))


def _receive_results(child, receive, deliver: Callable[[list], None], failures: list) -> None:
    """Collect a render child's results as they come (a thread of the parent, which renders meanwhile).

    Whatever goes wrong here is left in `failures` for the parent's own
    thread to raise: a thread that died quietly would lose files from the
    manifest.
    """
    try:
        while True:
            try:
                outcome, payload = receive.recv()
            except EOFError:
                failures.append(child)  # ended without saying so: its exit code tells why, once it is joined
                return
            if outcome == "part":
                deliver(payload)
            elif outcome == "done":
                return
            else:
                failures.append(payload)
                return
    except Exception as exc:
        failures.append(exc)


def _tasks(jobs: list[tuple], chunk: int = 256) -> list[list[int]]:
    """Units of work for the render pool, largest first.

    Files of one group (a feed format and kind, whose entry fragments are
    shared) stay in one task; the rest go in chunks. The pool hands tasks
    out as processes become free, which balances better than any estimate.
    """
    groups: dict[str, list[int]] = {}
    costs: dict[str, float] = {}
    singles: list[int] = []
    for index, job in enumerate(jobs):
        item = job[1]
        group = getattr(item, "group", "")
        if group:
            groups.setdefault(group, []).append(index)
            costs[group] = costs.get(group, 0.0) + getattr(item, "cost", 1.0)
        else:
            singles.append(index)
    tasks = [groups[g] for g in sorted(groups, key=lambda g: -costs[g])]
    tasks += [singles[i : i + chunk] for i in range(0, len(singles), chunk)]
    return tasks


def _start_methods() -> list[str]:
    # imported only here: a rebuild that renders a few files starts no process
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _render_all(jobs: list[tuple], roots: tuple, gzip_siblings: bool, fresh: bool, workers: int, deliver: Callable[[list], None]) -> None:
    """Render every job; each one's (index in `jobs`, *_render_one's result) goes to `deliver`, a task's worth at a time."""
    _KNOWN_FOLDERS.clear()
    if workers <= 1 or len(jobs) < RENDER_FORK_MIN or "fork" not in _start_methods():
        deliver([(i, *_render_one(job, roots, gzip_siblings, fresh)) for i, job in enumerate(jobs)])
        return
    global _RENDER_JOBS
    import multiprocessing

    # forked children see the catalog and the renderer as they are, with
    # nothing pickled; each writes its own files and sends back only their
    # manifest entries. This process renders too: every forked renderer
    # ends up with a copy of most of the heap it touches (reference counts
    # are writes), about 400 MB each at 100,000 posts.
    context = multiprocessing.get_context("fork")
    _RENDER_JOBS = (jobs, _tasks(jobs), roots, gzip_siblings, fresh, context.Value("q", 0))
    children = []
    receivers = []
    failures: list = []
    finished = False
    try:
        for _ in range(workers - 1):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_render_child, args=(send, os.getpid()), name="feeds-render", daemon=True)
            child.start()
            send.close()
            children.append((child, receive))
        # threads only once every child is forked: a fork copies no threads, but any lock one holds
        for child, receive in children:
            receiver = threading.Thread(target=_receive_results, args=(child, receive, deliver, failures), name="feeds-render-results", daemon=True)
            receiver.start()
            receivers.append(receiver)
        _render_claimed(deliver)
        for receiver in receivers:
            receiver.join()
        if failures:
            failure = failures[0]
            if isinstance(failure, BaseException):
                raise failure
            failure.join()
            raise RuntimeError(f"a render process ended without its results (exit code {failure.exitcode})")
        finished = True
    finally:
        _RENDER_JOBS = ()
        for child, receive in children:
            if not finished and child.is_alive():
                child.kill()  # the caller removes the folder it was writing into
        for receiver in receivers:
            receiver.join()
        for child, receive in children:
            receive.close()
            child.join()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_empty_parents(root: str, relative: str) -> None:
    parts = relative.split("/")[:-1]
    while parts:
        try:
            os.rmdir(root + "/" + "/".join(parts))
        except OSError:
            return  # not empty (or already gone)
        parts.pop()


# Folders this process knows exist in the build (and spare) being written:
# a new site makes a folder for nearly every file (/posts/<id>/), and on a
# slow disk a failed open and a stat before each mkdir cost as much as the
# mkdir. Emptied whenever a render starts, and every KNOWN_FOLDERS_MAX
# folders: most hold one post page and are never met again (remembering
# all cost each render process 27 MB at 100,000 posts), and a forgotten
# one costs a failed mkdir when it is met again.
_KNOWN_FOLDERS: set[str] = set()
KNOWN_FOLDERS_MAX = 4096


def _make_folder(folder: str) -> None:
    if folder in _KNOWN_FOLDERS:
        return
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass  # another render process made it
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
    if len(_KNOWN_FOLDERS) >= KNOWN_FOLDERS_MAX:
        _KNOWN_FOLDERS.clear()
    _KNOWN_FOLDERS.add(folder)


def _write_file(target: str, data: bytes, stamp: float | None, fresh: bool = False) -> None:
    if fresh:
        _make_folder(os.path.dirname(target))
    else:
        _remove(target)  # replace, never overwrite: the old inode may be shared with the published build
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if stamp is not None:
            # web servers send the file's mtime as Last-Modified: make it the
            # newest entry's, as `feeds serve` does
            os.utime(fd, (stamp, stamp))
    finally:
        os.close(fd)


def _link_from(prev_root: str, relative: str, target: str, gzip_siblings: bool) -> bool:
    """Hard-link a file (and its .gz, if it has one) from the published build; False if not possible."""
    source = prev_root + "/" + relative
    _remove(target)
    try:
        os.link(source, target)
    except FileNotFoundError:
        if not os.path.exists(source):
            return False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(source, target)
    except OSError:
        return False
    _remove(target + ".gz")
    if gzip_siblings:
        try:
            os.link(source + ".gz", target + ".gz")
        except FileNotFoundError:
            pass  # too small or not a text kind: published without one
    return True


def _as_pending(item: Pending | tuple[str, Resource]) -> Pending:
    if isinstance(item, Pending):
        return item
    site_path, ready = item
    return Pending(site_path, "", lambda ready=ready: ready)


def _switch(out: Path, build: Path, report: WriteReport) -> None:
    link_target = os.path.relpath(build, out.parent)
    temp = out.with_name(f".{out.name}.switch-{os.getpid()}")
    temp.unlink(missing_ok=True)
    os.symlink(link_target, temp)
    if out.exists() and not out.is_symlink():
        if out.is_dir():
            # first build into a folder made by something else: keep it aside once
            legacy = _builds_dir(out) / f"previous-folder-{int(time.time())}"
            os.rename(out, legacy)
            report.notes.append(f"{out} was a plain folder; it was moved to {legacy} and replaced by a link to the build")
        else:
            temp.unlink()
            raise OutputError(f"{out}: exists and is not a folder; not replacing it")
    with switching(out):  # what tells the server's workers, without a readlink per request
        os.replace(temp, out)


def _prune(builds: Path, keep: set[Path]) -> None:
    """Remove every build but the published one and the one before it (the next spare)."""
    keep_names = {p.name for p in keep if p}
    try:
        entries = list(builds.iterdir())
    except OSError:
        return
    for entry in entries:
        base = entry.name[: -len(MANIFEST_SUFFIX)] if entry.name.endswith(MANIFEST_SUFFIX) else entry.name
        if base in keep_names or base.startswith("previous-folder-") or entry.name in ("last-build.json", ".lock", SWITCHES_NAME):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def build_in_memory(config: Config, *, use_cache: bool = False) -> tuple[SiteState, dict[str, Resource]]:
    """The whole site without touching the output folder: (state, {path: Resource})."""
    state = run_pipeline(config, use_cache=use_cache)
    return state, dict(render_resources(config, state))

