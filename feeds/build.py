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
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .catalog import Catalog, build_catalog
from .config import Config
from .model import ERROR, Problem
from .pipeline import Cache, LoadResult, load_articles
from .render.site import Pending, Resource, SiteRenderer

MANIFEST_SUFFIX = ".manifest.json"
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


def run_pipeline(config: Config, *, use_cache: bool = True, progress: Callable[[int, int], None] | None = None, cache: Cache | None = None) -> SiteState:
    load = load_articles(config, use_cache=use_cache, progress=progress, cache=cache)
    catalog = build_catalog(load.articles, config.categories.slug_map)
    problems = list(load.problems) + [
        Problem(str(config.path or "config.toml"), p.line, p.severity, p.message) for p in catalog.problems
    ]
    return SiteState(load=load, catalog=catalog, problems=problems)


def plan_site(config: Config, state: SiteState) -> Iterator[Pending]:
    """Every file to publish, keyed, rendered only on demand."""
    return SiteRenderer(config, state.catalog).plan()


def render_resources(config: Config, state: SiteState) -> Iterator[tuple[str, Resource]]:
    return SiteRenderer(config, state.catalog).render()


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


def _safe_join(root: Path, site_path: str) -> Path:
    relative = site_path.lstrip("/")
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\x00" in relative:
        raise OutputError(f"refusing to write unsafe path {site_path!r}")
    return root.joinpath(*parts)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def _load_manifest(build: Path) -> dict[str, list[str]]:
    """path → [input key, content digest] of a previous build ({} if unusable)."""
    try:
        with open(build.with_name(build.name + MANIFEST_SUFFIX), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list) and len(v) == 2}


def write_tree(out: Path, resources: Iterable[Pending | tuple[str, Resource]], *, gzip_siblings: bool = False) -> WriteReport:
    """Write every file under a fresh build folder, then switch `out` to it.

    A file whose key (or, once rendered, whose bytes) equals the previous
    build's is hard-linked from it instead of rendered and written again.
    """
    started = time.perf_counter()
    report = WriteReport()
    out = out.absolute()
    builds = _builds_dir(out)
    try:
        builds.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{builds}: cannot create build folder: {exc.strerror}") from None

    previous: Path | None = None
    if out.is_symlink():
        target = Path(os.readlink(out))
        previous = target if target.is_absolute() else (out.parent / target)
        if not previous.is_dir():
            previous = None
    old_manifest = _load_manifest(previous) if previous else {}
    options = ["options", f"gzip={int(gzip_siblings)}"]

    if previous is not None and old_manifest.get("") == options:
        items = [_as_pending(item) for item in resources]
        if len(items) == len(old_manifest) - 1 and all(
            item.key and old_manifest.get(item.path, ("",))[0] == item.key for item in items
        ):
            # nothing changed: the published tree stays as it is, untouched
            report.files = report.skipped = len(items)
            report.target = previous
            report.up_to_date = True
            report.seconds = time.perf_counter() - started
            return report
        resources = items

    name = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.perf_counter_ns() % 1000000:06d}"
    build = builds / name
    manifest: dict[str, list[str]] = {}
    try:
        build.mkdir()
        made_dirs: set[Path] = {build}
        manifest[""] = options
        for item in resources:
            item = _as_pending(item)
            site_path = item.path
            path = _safe_join(build, site_path)
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
            report.files += 1
            old = old_manifest.get(site_path)
            if item.key and old is not None and old[0] == item.key and _link_all(previous, build, site_path, path, gzip_siblings, report):
                manifest[site_path] = old
                report.skipped += 1
                continue
            resource = item.render()
            digest = _digest(resource.body)
            manifest[site_path] = [item.key, digest]
            report.bytes += len(resource.body)
            siblings = [(path, resource.body, site_path)]
            if gzip_siblings and resource.kind in GZIP_KINDS and len(resource.body) >= GZIP_MIN_BYTES:
                siblings.append((path.with_name(path.name + ".gz"), None, site_path + ".gz"))
            for file, body, key in siblings:
                if previous is not None and old is not None and old[1] == digest:
                    try:
                        os.link(_safe_join(previous, key), file)
                        report.linked += 1
                        continue
                    except OSError:
                        pass  # not there or another file system: write it
                data = body if body is not None else gzip.compress(resource.body, compresslevel=9, mtime=0)
                with open(file, "wb") as handle:
                    handle.write(data)
                if resource.last_modified is not None:
                    # web servers send the file's mtime as Last-Modified: make it
                    # the newest entry's, as `feeds serve` does
                    stamp = resource.last_modified.timestamp()
                    os.utime(file, (stamp, stamp))
                report.written += 1
        with open(build.with_name(build.name + MANIFEST_SUFFIX), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, ensure_ascii=False, sort_keys=True)
        _switch(out, build, report)
    except OSError as exc:
        shutil.rmtree(build, ignore_errors=True)
        build.with_name(build.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
        where = getattr(exc, "filename", None) or build
        raise OutputError(f"{where}: cannot write output ({exc.strerror or exc}); the previous output is unchanged") from None
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        build.with_name(build.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
        raise
    _prune(builds, keep={build, previous} if previous else {build})
    report.target = build
    report.seconds = time.perf_counter() - started
    return report


def _as_pending(item: Pending | tuple[str, Resource]) -> Pending:
    if isinstance(item, tuple):
        site_path, ready = item
        return Pending(site_path, "", lambda ready=ready: ready)
    return item


def _link_all(previous: Path | None, build: Path, site_path: str, path: Path, gzip_siblings: bool, report: WriteReport) -> bool:
    """Hard-link a file (and its .gz) from the previous build; False if that is not possible."""
    if previous is None:
        return False
    source = _safe_join(previous, site_path)
    names = [(source, path)]
    gz = source.with_name(source.name + ".gz")
    if gzip_siblings:
        if not gz.exists():
            return False
        names.append((gz, path.with_name(path.name + ".gz")))
    done = []
    try:
        for old, new in names:
            os.link(old, new)
            done.append(new)
    except OSError:
        for new in done:
            new.unlink(missing_ok=True)
        return False
    report.linked += len(names)
    return True


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
    os.replace(temp, out)


def _prune(builds: Path, keep: set[Path]) -> None:
    """Remove older builds; the one just replaced stays for readers still in it."""
    keep_names = {p.name for p in keep if p}
    try:
        entries = list(builds.iterdir())
    except OSError:
        return
    for entry in entries:
        base = entry.name[: -len(MANIFEST_SUFFIX)] if entry.name.endswith(MANIFEST_SUFFIX) else entry.name
        if base in keep_names or base.startswith("previous-folder-") or entry.name == "last-build.json":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def build_in_memory(config: Config, *, use_cache: bool = False) -> tuple[SiteState, dict[str, Resource]]:
    """The whole site without touching the output folder: (state, {path: Resource})."""
    state = run_pipeline(config, use_cache=use_cache)
    return state, dict(render_resources(config, state))

