"""The builder's change detector: a stat stamp of every post.

Taken by the builder process (feeds/builder.py) every `[server]
reload_seconds`, never by a server worker: statting ten thousand files
holds the GIL for tens of milliseconds, which would show up as request
latency. Any write changes the ctime, and a replaced file has a new inode,
so an edit that keeps size and mtime is still seen.
"""

from __future__ import annotations

import os
from pathlib import Path

from .collect import find_sources


def stamp(source: Path, pattern: str) -> tuple:
    found, problems = find_sources(source, pattern)
    out = []
    for path, rel in found:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    out.extend(("problem", str(p)) for p in problems)
    return tuple(out)
