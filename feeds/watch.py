"""The builder's change detector: a stat stamp of every post.

Taken by the builder process (feeds/builder.py) every `[server]
reload_seconds`, never by a server worker: statting ten thousand files
holds the GIL for tens of milliseconds, which would show up as request
latency. Any write changes the ctime, and a replaced file has a new inode,
so an edit that keeps size and mtime is still seen.
"""

from __future__ import annotations

from pathlib import Path

from .collect import scan_sources


def stamp_of(scan) -> tuple:
    """The stamp of a scan_sources() result (the same scan then feeds the build)."""
    found, problems = scan
    out = []
    for source in found:
        st = source.stat
        out.append((source.rel, source.error) if st is None else (source.rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    out.extend(("problem", str(p)) for p in problems)
    return tuple(out)


def stamp(source: Path, pattern: str) -> tuple:
    return stamp_of(scan_sources(source, pattern))
