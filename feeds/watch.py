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


class ChangeSignal:
    """Wakes the builder as soon as something changes under the source folder.

    Linux inotify through ctypes (no extra dependency): every folder below
    the source is watched, and folders created later are added as they
    appear. It only decides *when* to look; the stat stamp still decides
    *whether* anything changed, so a missed or spurious event costs at most
    one interval or one cheap scan. Elsewhere (or when inotify is
    unavailable) `wait` simply sleeps for the interval.
    """

    EVENTS = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800  # modify, attrib, close-write, moves, create, delete, self
    IS_DIR = 0x40000000
    CREATED_OR_MOVED_IN = 0x100 | 0x80
    QUIET = 0.05  # events closer together than this are one change
    SETTLE_MAX = 0.5  # but never wait longer than this for a burst to end

    def __init__(self, source: Path):
        import os as _os

        self.source = source
        self.fd = -1
        self._os = _os
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(0x800 | 0x80000)  # IN_NONBLOCK | IN_CLOEXEC
            if fd < 0:
                return
            self._libc = libc
            self.fd = fd
            self._watch_tree(str(source))
        except (OSError, AttributeError):
            self.fd = -1

    @property
    def active(self) -> bool:
        return self.fd >= 0

    def _watch(self, directory: str) -> None:
        self._libc.inotify_add_watch(self.fd, self._os.fsencode(directory), self.EVENTS)

    def _watch_tree(self, top: str) -> None:
        self._watch(top)
        for root, dirs, _files in self._os.walk(top, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in dirs:
                self._watch(self._os.path.join(root, name))

    def _drain(self) -> bool:
        """Read pending events; True if there were any. New folders get watched."""
        import struct

        seen = False
        while True:
            try:
                data = self._os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            except OSError:
                return True
            if not data:
                return seen
            seen = True
            offset = 0
            while offset + 16 <= len(data):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0")
                offset += 16 + length
                if mask & self.IS_DIR and mask & self.CREATED_OR_MOVED_IN and name:
                    # a new folder: its own changes must wake us too (the
                    # stamp scan will pick up anything already inside)
                    self._rewatch_all()
                    break

    def _rewatch_all(self) -> None:
        try:
            self._watch_tree(str(self.source))  # adding an existing watch is harmless
        except OSError:
            pass

    def wait(self, timeout: float) -> bool:
        """Block until a change (True, after it settles) or until `timeout` (False)."""
        import select
        import time as _time

        if not self.active:
            _time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready or not self._drain():
            return False
        deadline = _time.monotonic() + self.SETTLE_MAX
        while _time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], self.QUIET)
            if not ready or not self._drain():
                break
        return True

    def close(self) -> None:
        if self.fd >= 0:
            self._os.close(self.fd)
            self.fd = -1
