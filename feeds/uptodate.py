"""The no-change shortcut of `feeds build`: is the published tree already current?

A build records what it was made from: every post's stat signature
(inode, size, mtime and ctime: any write changes ctime), the config and
the code. When all of that is unchanged, the next build only re-reports the
recorded problems, without loading the cache or rendering anything. The
signature of a file changed within RACY_SECONDS of the record cannot be
trusted (a write in the same clock tick could leave it unchanged), so such
a file is read again and its content key compared with the one the build
used, which the record keeps for every file changed that recently (as git
does for its "racy" index entries). Without that, the build right after a
post was edited, a second later, took the normal path: 1.4-1.7 s at
10,000 posts instead of 0.7.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from . import __version__
from .collect import scan_sources
from .pipeline import RACY_SECONDS, Cache, code_fingerprint
from .config import Config

RECORD_NAME = "last-build.json"


def _record_file(config: Config) -> Path:
    out = config.output.dir.absolute()
    return out.parent / f".{out.name}.builds" / RECORD_NAME


def fingerprint(config: Config, gzip_siblings: bool, scan=None) -> tuple[str, float]:
    """(digest of posts' signatures + config + code, newest ctime among the posts).

    `scan` is a scan_sources() result to reuse (the build reads the same one).
    """
    found, problems = scan if scan is not None else scan_sources(config.source.dir, config.source.pattern)
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((__version__, code_fingerprint(), repr(config), gzip_siblings, [str(p) for p in problems])).encode())
    newest = 0.0
    lines = []
    for source in found:
        st = source.stat
        if st is None:
            lines.append(f"{source.rel}\0missing\n")
            continue
        newest = max(newest, st.st_ctime, st.st_mtime)
        lines.append(f"{source.rel}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}\n")
    digest.update("".join(lines).encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), newest


def check(config: Config, gzip_siblings: bool, scan=None, fingerprinted: tuple[str, float] | None = None) -> dict | None:
    """The recorded build if it is still current, else None.

    `fingerprinted`: this fingerprint() result, when the caller has it already.
    """
    record_file = _record_file(config)
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    out = config.output.dir
    if not isinstance(record, dict) or not out.is_symlink():
        return None
    if os.path.realpath(out) != record.get("target"):
        return None
    stamp, newest = fingerprinted or fingerprint(config, gzip_siblings, scan)
    if stamp != record.get("stamp"):
        return None
    racy_after = record.get("time", 0) - RACY_SECONDS
    if newest >= racy_after and not _same_content(scan, racy_after, record.get("recent_keys") or {}, config):
        return None
    return record


def _same_content(scan, racy_after: float, recent_keys: dict, config: Config) -> bool:
    """Every file changed after `racy_after` still holds what the recorded build read (by content key)."""
    found, _ = scan if scan is not None else scan_sources(config.source.dir, config.source.pattern)
    for source in found:
        st = source.stat
        if st is None or max(st.st_ctime, st.st_mtime) < racy_after:
            continue
        key = recent_keys.get(source.rel)
        if key is None:
            return False
        try:
            with open(source.path, "rb") as handle:
                if Cache.key(handle.read(), source.rel) != key:
                    return False
        except OSError:
            return False
    return True


def save(config: Config, gzip_siblings: bool, stamp: str, target: Path, problems: list[str], summary: str, recent_keys: dict[str, str] | None = None) -> None:
    """Record the build; `recent_keys`: rel → content key of each post changed within RACY_SECONDS of its start."""
    record_file = _record_file(config)
    record = {
        "stamp": stamp,
        "time": time.time(),
        "target": os.path.realpath(target),
        "problems": problems,
        "summary": summary,
        "recent_keys": recent_keys or {},
    }
    try:
        tmp = record_file.with_suffix(f".tmp{os.getpid()}")
        # ASCII: a path that is not valid UTF-8 (kept with surrogate escapes) must survive the trip
        tmp.write_text(json.dumps(record), encoding="ascii")
        os.replace(tmp, record_file)
    except OSError:
        pass  # only a shortcut: without it the next build takes the normal path


def forget(config: Config) -> None:
    _record_file(config).unlink(missing_ok=True)
