"""The one builder of a live site: watch the posts, rebuild the tree, switch it.

`feeds serve` runs exactly one Builder, in its own process (the `serve`
command's, after the foreground build), while granian's workers only read
the published tree (feeds/served.py). So the pipeline's memory lives in
one process instead of every worker, a rebuild never pauses a request, and
the WebSub hub hears about each change once.

Each build is `run_pipeline` + `write_tree`, with one `Cache` kept in
memory across builds: an edit re-processes only the posts whose bytes
changed, and the tree writer renders only files whose inputs changed. The
walk of the source folder that detects a change is the one the build
reads, so a change costs one walk, not two.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from . import watch
from .build import OutputAhead, SiteState, WriteReport, plan_site, run_pipeline, write_tree
from .collect import scan_sources
from .config import Config
from .pipeline import Cache, make_job
from .served import published_manifest

log = logging.getLogger("feeds.builder")


@dataclass
class BuildResult:
    state: SiteState
    report: WriteReport
    new_problems: list[str]
    seconds: float


class Builder:
    def __init__(self, config: Config, *, cache: Cache | None = None, keep_state: bool = False, echo: Callable[[str], None] | None = None):
        self.config = config
        self.cache = cache if cache is not None else Cache(config.build.cache_dir, make_job(config))
        self.keep_state = keep_state
        self.state: SiteState | None = None  # the last build's, only with keep_state
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stamp: tuple | None = None
        self.problems: set[str] = set()
        self.builds = 0
        self.busy = False
        self._scan = None  # the scan that showed a change, for the build to reuse
        self.scan_seconds = 0.0  # what the last look at every post took
        self.publisher = None
        if config.websub.hub:
            from .websub import Publisher

            self.publisher = Publisher(config.websub.hub, config.site.base_url)

    def _scan_now(self):
        return scan_sources(self.config.source.dir, self.config.source.pattern)

    def changed(self) -> bool:
        started = time.perf_counter()
        scan = self._scan_now()
        stamp = watch.stamp_of(scan)
        self.scan_seconds = time.perf_counter() - started
        if self.stamp is not None and stamp == self.stamp:
            return False
        self._scan = (scan, stamp)
        return True

    def build(self, progress: Callable[[int, int], None] | None = None) -> BuildResult:
        """Build now and switch the output to it (or leave it, if nothing changed)."""
        started = time.perf_counter()
        self.busy = True
        try:
            # stamped before reading: an edit made during the build triggers the next one
            if self._scan is not None:
                (scan, stamp), self._scan = self._scan, None
            else:
                scan = self._scan_now()
                stamp = watch.stamp_of(scan)
            before = published_manifest(self.config.output.dir) if self.publisher else None
            ahead = OutputAhead(self.config.output.dir, self.config.output.gzip)
            state = run_pipeline(self.config, cache=self.cache, progress=progress, scan=scan, ahead=ahead)
            report = write_tree(self.config.output.dir, plan_site(self.config, state), gzip_siblings=self.config.output.gzip, ahead=ahead)
            self.stamp = stamp
            self.builds += 1
            lines = {str(p) for p in state.problems}
            new = sorted(lines - self.problems)
            self.problems = lines
            if self.publisher is not None and before is not None and not report.up_to_date:
                # (no manifest before: a first publication, which no hub subscriber can be waiting for)
                after = published_manifest(self.config.output.dir)
                if after is not None:
                    self.publisher(before, after)
            self.state = state if self.keep_state else None
            return BuildResult(state, report, new, time.perf_counter() - started)
        finally:
            self.busy = False

    def build_if_changed(self) -> BuildResult | None:
        if not self.changed():
            return None
        result = self.build()
        if self.builds > 1:
            for line in result.new_problems:
                self.echo(line)
            report = result.report
            log.info(
                "rebuilt in %.2fs: %d posts, %d files (%d rendered)%s",
                result.seconds,
                len(result.state.catalog.articles),
                report.files,
                report.files - report.skipped,
                "" if not report.up_to_date else "; output unchanged",
            )
        return result

    def poll(self) -> BuildResult | None:
        """One round of the loop: rebuild if the posts changed."""
        try:
            return self.build_if_changed()
        except Exception as exc:  # keep the published tree, try again next round
            log.exception("rebuild failed; the published site is unchanged: %s", exc)
            return None

    def run(self, stop: threading.Event, interval: float, alive: Callable[[], bool] = lambda: True) -> None:
        """Rebuild whenever the posts change, until `stop` or the server is gone.

        With inotify the builder wakes as soon as a post is written (so a new
        post is served after one rebuild, not after up to `interval` more);
        a full scan stays as the backstop (inotify misses, for one, an edit
        to the target of a linked post), every `interval` or, on a large
        site, every BACKSTOP_COST_RATIO scans' time: a scan of 100,000
        posts takes about as long as the default interval, and scanning
        without pause took a core from the server's workers.
        """
        signal = watch.ChangeSignal(self.config.source.dir)
        try:
            while alive() and not stop.is_set():
                signal.wait(backstop_seconds(interval, self.scan_seconds, signal.active))
                if stop.is_set() or not alive():
                    break
                self.poll()
        finally:
            signal.close()


BACKSTOP_COST_RATIO = 50  # backstop scans take at most 1/50 of a core


def backstop_seconds(interval: float, scan_seconds: float, woken_by_changes: bool) -> float:
    """How long the builder waits before looking at every post when nothing woke it."""
    if not woken_by_changes:
        return interval  # looking is the only way to notice a change
    return max(interval, BACKSTOP_COST_RATIO * scan_seconds)
