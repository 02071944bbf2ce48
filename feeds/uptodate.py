"""The no-change shortcut of `feeds build`: is the published tree already current?

A build records what it was made from: every post's stat signature
(inode, size, mtime and ctime: any write changes ctime), the config and
the code. When all of that is unchanged, the next build only re-reports the
recorded problems, without loading the cache or rendering anything. Files
changed within RACY_SECONDS of the record are never trusted (a write in the
same clock tick could leave the signature unchanged), so such a build takes
the normal path.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from . import __version__
from .collect import scan_sources
from .pipeline import code_fingerprint
from .config import Config

RECORD_NAME = "last-build.json"
RACY_SECONDS = 2.0


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
    if stamp != record.get("stamp") or newest >= record.get("time", 0) - RACY_SECONDS:
        return None
    return record


def save(config: Config, gzip_siblings: bool, stamp: str, target: Path, problems: list[str], summary: str) -> None:
    record_file = _record_file(config)
    record = {
        "stamp": stamp,
        "time": time.time(),
        "target": os.path.realpath(target),
        "problems": problems,
        "summary": summary,
    }
    try:
        tmp = record_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, record_file)
    except OSError:
        pass  # only a shortcut: without it the next build takes the normal path


def forget(config: Config) -> None:
    _record_file(config).unlink(missing_ok=True)
