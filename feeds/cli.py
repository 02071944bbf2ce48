"""`feeds build | serve | check` (click, which Flask already depends on).

Exit codes: 0 done (warnings allowed), 1 errors found (or any warning with
--strict; the output is still written with every good post), 2 unusable
config or arguments.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from .config import Config, ConfigError, load_config, resolve_config_path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _load(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)


class Progress:
    """A progress bar with posts/s and ETA on a terminal; silent in a pipe."""

    def __init__(self, stream=None, label: str = "posts"):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and os.environ.get("TERM") != "dumb"
        self.label = label
        self.started = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0
        width = 30
        filled = int(width * done / total)
        bar = "█" * filled + "░" * (width - filled)
        self.stream.write(f"\r{bar} {done}/{total} {self.label} {rate:,.0f}/s ETA {eta:4.0f}s ")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _report(problems, stream=None) -> tuple[int, int]:
    errors = warnings = 0
    for problem in sorted(problems, key=lambda p: (p.path, p.line or 0, p.severity, p.message)):
        click.echo(str(problem), err=True)
        if problem.severity == "error":
            errors += 1
        else:
            warnings += 1
    return errors, warnings


# Commands that leave nothing behind once they return: every file they
# wrote is closed, and their threads and child processes have ended.
QUICK_EXIT_COMMANDS = ("build", "check")


def entry() -> None:
    """The `feeds` program: main(), without the interpreter's teardown after a build or a check.

    Freeing a build's objects one at a time at exit took 45-75 ms of a
    1.3 s one-post rebuild at 10,000 posts, after everything was written;
    the operating system frees the process's memory at once.
    """
    # the group's own options are flags: its first other word is the command
    command = next((word for word in sys.argv[1:] if not word.startswith("-")), None)
    try:
        main()
    except SystemExit as exc:
        if command not in QUICK_EXIT_COMMANDS or not (exc.code is None or isinstance(exc.code, int)):
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            raise exc from None  # let the interpreter report what it can
        os._exit(exc.code or 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feeds")
def main() -> None:
    """Publish Hexo-style posts as per-category Atom, RSS and JSON feeds."""


@main.command()
@click.option("--config", "config_path", metavar="FILE", help="Config file (default: $FEEDS_CONFIG or ./config.toml).")
@click.option("--out", "out_dir", metavar="DIR", help="Output folder (default: [output] dir).")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--no-cache", is_flag=True, help="Ignore and do not write the build cache.")
@click.option("--gzip/--no-gzip", "gzip_siblings", default=None, help="Also write .gz siblings (default: [output] gzip).")
def build(config_path, out_dir, strict, no_cache, gzip_siblings) -> None:
    """Write the static tree (replaced atomically)."""
    config = _load(config_path)
    if out_dir:
        config = replace(config, output=replace(config.output, dir=Path(out_dir)))
    started = time.perf_counter()
    use_gzip = config.output.gzip if gzip_siblings is None else gzip_siblings
    from . import uptodate
    from .collect import scan_sources

    # this command ends when the tree is written: what it loads until then
    # (the walk, the cache, the posts, the catalog) lives until then, and
    # the collector need not walk it, neither while it is loaded nor after
    # (its passes were a third of a one-post rebuild at 10,000 posts); it
    # runs again while files are rendered, which makes garbage
    gc.disable()
    # one walk of the source folder serves the up-to-date check, the record
    # and the reading (taken before anything is read: a post changed during
    # the build makes the record stale, never the output)
    scan = scan_sources(config.source.dir, config.source.pattern)
    fingerprinted = uptodate.fingerprint(config, use_gzip, scan)
    if not no_cache:
        record = uptodate.check(config, use_gzip, scan, fingerprinted)
        if record is not None:
            lines = record.get("problems", [])
            for line in lines:
                click.echo(line, err=True)
            errors = sum(": error: " in line for line in lines)
            warnings = len(lines) - errors
            click.echo(f"{record.get('summary', '')}; nothing changed since the last build, output untouched; {time.perf_counter() - started:.2f}s")
            if errors or (strict and warnings):
                sys.exit(EXIT_PROBLEMS)
            return
    stamp, _ = fingerprinted
    from .build import OutputAhead, OutputError, plan_site, run_pipeline, write_tree

    progress = Progress()
    ahead = OutputAhead(config.output.dir, use_gzip)
    try:
        state = run_pipeline(config, use_cache=not no_cache, progress=progress, scan=scan, ahead=ahead)
    finally:
        progress.close()
        gc.freeze()
        gc.enable()
    # the walk's list of every file (70 MB at 100,000 posts) would otherwise
    # live through rendering, the peak of a build's memory
    del scan
    errors, warnings = _report(state.problems)
    # so does the plan: frozen as it is made, not walked by the collection
    # its 30,000 new objects would set off (16 ms of a one-post rebuild)
    gc.disable()
    try:
        planned = plan_site(config, state)
    finally:
        gc.freeze()
        gc.enable()
    try:
        report = write_tree(config.output.dir, planned, gzip_siblings=use_gzip, ahead=ahead)
    except OutputError as exc:
        uptodate.forget(config)
        click.echo(f"{exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    load = state.load
    catalog = state.catalog
    elapsed = time.perf_counter() - started
    if report.up_to_date:
        files = f"{report.files} files, all up to date, in {config.output.dir}"
    else:
        files = f"{report.files} files ({report.written} written, {report.files - report.written} unchanged) in {config.output.dir}"
    published = f"published {len(catalog.articles)} of {load.files} posts ({load.drafts} drafts skipped"
    click.echo(
        f"{published}, {load.processed} processed, {load.files - load.processed} from cache) into {len(catalog.feeds)} feeds; {files}; "
        f"{errors} errors, {warnings} warnings; {elapsed:.2f}s"
    )
    if not no_cache:
        lines = [str(p) for p in sorted(state.problems, key=lambda p: (p.path, p.line or 0, p.severity, p.message))]
        summary = f"{published}) into {len(catalog.feeds)} feeds; {report.files} files in {config.output.dir}; {errors} errors, {warnings} warnings"
        uptodate.save(config, use_gzip, stamp, config.output.dir, lines, summary, load.recent_keys)
    if errors or (strict and warnings):
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.option("--config", "config_path", metavar="FILE", help="Config file (default: $FEEDS_CONFIG or ./config.toml).")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
def check(config_path, strict) -> None:
    """Report every problem; exit 1 if any error."""
    from .build import run_pipeline

    config = _load(config_path)
    progress = Progress()
    try:
        state = run_pipeline(config, use_cache=False, progress=progress, render_next=False)
    finally:
        progress.close()
    errors, warnings = _report(state.problems)
    click.echo(f"{state.load.files} posts checked: {len(state.catalog.articles)} publishable, {errors} errors, {warnings} warnings")
    if errors or (strict and warnings):
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.option("--config", "config_path", metavar="FILE", help="Config file (default: $FEEDS_CONFIG or ./config.toml).")
@click.option("--host", default=None, help="Address to listen on (default: [server] host).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Port (default: [server] port).")
@click.option("--workers", default=None, type=click.IntRange(1, 64), help="Worker processes (default: [server] workers).")
def serve(config_path, host, port, workers) -> None:
    """Serve the site live with granian (a production server), rebuilding on change.

    This process builds the tree once in the foreground, starts granian as
    a child (its workers serve the tree from disk), then stays as the one
    builder: it watches the posts and rebuilds and switches the tree.
    """
    import logging
    import signal
    import subprocess
    import threading

    config = _load(config_path)
    host = host or config.server.host
    port = config.server.port if port is None else port
    workers = workers or config.server.worker_count
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from .build import OutputError
    from .builder import Builder

    builder = Builder(config, echo=lambda line: click.echo(line, err=True))
    progress = Progress()
    try:
        result = builder.build(progress=progress)
    except OutputError as exc:
        click.echo(f"{exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    finally:
        progress.close()
    errors, warnings = _report(result.state.problems)
    for note in result.report.notes:
        click.echo(f"note: {note}", err=True)
    catalog = result.state.catalog
    reload_note = f"rebuild on change every {config.server.reload_seconds:g}s" if config.server.reload_seconds > 0 else "no rebuilds ([server] reload_seconds = 0)"
    click.echo(
        f"serving {len(catalog.articles)} posts in {len(catalog.feeds)} feeds from {config.output.dir} at http://{host}:{port}/ "
        f"({errors} errors, {warnings} warnings; built in {result.seconds:.1f}s; {reload_note}; site url {config.site.url})",
        err=True,
    )
    env = dict(os.environ, FEEDS_CONFIG=str(resolve_config_path(config_path).resolve()))
    # granian runs many request threads; with glibc's default of one malloc
    # arena per thread (up to 8 per core) a worker's RSS creeps up as each
    # arena keeps its freed memory. Two arenas keep it flat.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    parent = os.getpid()

    def die_with_parent() -> None:
        # a killed `feeds serve` (SIGKILL included) must not leave granian running
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:
            os._exit(1)

    server = subprocess.Popen(
        [sys.executable, "-m", "feeds.web", host, str(port), str(workers)],
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
    )
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        if builder.busy:
            raise SystemExit(0)  # a rebuild in progress is abandoned; write_tree leaves the tree as it was

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if config.server.reload_seconds > 0:
            builder.run(stop, config.server.reload_seconds, alive=lambda: server.poll() is None)
        else:
            while server.poll() is None and not stop.wait(1.0):
                pass
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    if not stop.is_set() and server.returncode:
        sys.exit(server.returncode)


if __name__ == "__main__":
    main()
