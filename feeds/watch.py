"""Watch a source folder from a separate process; print a line when it changes.

The live server runs this instead of polling in its own process: statting
ten thousand files holds the GIL for tens of milliseconds every few seconds,
which shows up as latency spikes for requests. Here it costs the server
nothing until something changes. The watcher exits when its parent does.
"""

from __future__ import annotations

import os
import sys
import time
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
    return tuple(out)


def main(argv: list[str]) -> int:
    source, pattern, interval = Path(argv[0]), argv[1], float(argv[2])
    parent = os.getppid()
    last = stamp(source, pattern)
    # the server built its site before this process started: let it compare
    # once, so a change made in between is not missed
    print("changed", flush=True)
    while os.getppid() == parent:
        time.sleep(interval)
        current = stamp(source, pattern)
        if current != last:
            last = current
            try:
                print("changed", flush=True)
            except BrokenPipeError:
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
