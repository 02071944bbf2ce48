"""Find post files and split each into front matter and body.

Nothing here interprets metadata: a Post is what the file says. Every
problem becomes a Problem naming the file (and line); a file that cannot
be read yields no Post, and never stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
import re
from pathlib import Path
from functools import lru_cache
from typing import Any, NamedTuple

from .gcpause import cyclic_gc_paused
from .model import ERROR, WARNING, Post, Problem

MAX_FILE_BYTES = 16 * 1024 * 1024


class YamlTools(NamedTuple):
    yaml: Any  # the PyYAML module
    loader: type
    handler: Any  # python-frontmatter's YAMLHandler


@lru_cache(maxsize=1)
def front_matter_yaml() -> YamlTools:
    """PyYAML, the front-matter loader and python-frontmatter's handler, imported with the first post read.

    Walking the source folder, which is all an up-to-date check and a
    rebuild's main process do with the posts, needs none of them.
    """
    import yaml
    from frontmatter.default_handlers import YAMLHandler

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # without libyaml: correct, only slower

    class FrontMatterLoader(base):  # type: ignore[misc, valid-type]
        """The C safe loader, minus implicit timestamps.

        PyYAML turns `2021-02-30 10:00:00` into a ValueError that loses the
        whole front matter, and turns naive times into naive datetimes; dates
        stay strings here so normalize can parse and report them one by one.
        """

    FrontMatterLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return YamlTools(yaml, FrontMatterLoader, YAMLHandler())

_FENCE = re.compile(r"^-{3,}[ \t]*$")
_TOP_KEY = re.compile(r"^([^\s#:'\"\-][^:]*?):(?:[ \t]|$)")
_SCALAR_LINE = re.compile(r"^([A-Za-z_][\w-]*):[ \t]+(\S.*?)[ \t]*$")
_QUOTE_RUNS = re.compile(r"^[\"'“”‘’]+|[\"'“”‘’]+$")
# Only plain-text keys are repaired: a broken list or date is reported, not guessed.
# C0 controls (but TAB, LF, CR), DEL and C1: YAML refuses them, and they are
# never meant in metadata.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_META_NODES = 20000  # YAML aliases can make a few bytes into millions of nodes
_REPAIRABLE_KEYS = frozenset({"title", "author", "description", "excerpt", "subtitle"})


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`**/*.md`-style pattern → regex over '/'-separated relative paths."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.S)


class FileStat(NamedTuple):
    """What a build needs of a file's stat (an os.stat_result is three times the size)."""

    st_dev: int
    st_ino: int
    st_size: int
    st_mtime_ns: int
    st_ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileStat":
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9

    @property
    def st_ctime(self) -> float:
        return self.st_ctime_ns / 1e9


@dataclass(frozen=True, slots=True)
class Source:
    """One matching file as found: where it is and its stat (or why there is none)."""

    path: str
    rel: str  # below the source folder, '/'-separated
    stat: FileStat | None  # of the file a link points to
    error: str | None = None


def scan_sources(source_dir: Path, pattern: str) -> tuple[list[Source], list[Problem]]:
    """Every file below source_dir matching pattern, sorted by relative path, with its stat.

    Follows directory symlinks but never enters a directory twice, so a
    symlink loop is reported instead of recursing forever. One walk and one
    stat per file serve both the up-to-date check and the reading.
    """
    problems: list[Problem] = []
    if not source_dir.is_dir():
        return [], [Problem(str(source_dir), None, ERROR, "source folder does not exist or is not a folder")]
    matcher = glob_regex(pattern).match
    found: list[Source] = []
    seen_dirs: set[tuple[int, int]] = set()

    def walk(directory: str, rel_prefix: str, name: str, parent: int | None) -> None:
        # each folder is opened once and its files are stat'ed relative to
        # it: a stat by full path walks every folder above the file again
        # (walking and stat'ing 10,000 posts: 94 ms by path, 78 ms this way)
        try:
            folder = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
        except OSError as exc:
            problems.append(Problem(str(directory), None, WARNING, f"cannot enter folder: {exc.strerror}"))
            return
        try:
            st = os.fstat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                problems.append(Problem(str(directory), None, WARNING, "folder already visited (symlink loop?): skipped"))
                return
            seen_dirs.add(key)
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                problems.append(Problem(str(directory), None, WARNING, f"cannot list folder: {exc.strerror}"))
                return
            prefix = directory if directory.endswith("/") else directory + "/"
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue  # editor swap files, .git and the like are never posts
                rel = rel_prefix + name
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                except OSError:
                    is_dir = False
                if is_dir:
                    walk(prefix + name, rel + "/", name, folder)
                    continue
                if not matcher(rel):
                    continue
                try:
                    is_file = entry.is_file()
                except OSError:
                    is_file = False
                if not is_file:
                    problems.append(Problem(prefix + name, None, ERROR, "cannot read post: broken link or not a regular file"))
                    continue
                try:
                    found.append(Source(prefix + name, rel, FileStat.of(os.stat(name, dir_fd=folder))))
                except OSError as exc:
                    found.append(Source(prefix + name, rel, None, exc.strerror or str(exc)))
        finally:
            os.close(folder)

    # the walk makes objects that all outlive it and form no cycles: the
    # collector's passes over them were a third of the walk's time
    with cyclic_gc_paused():
        walk(str(source_dir), "", str(source_dir), None)
    found.sort(key=lambda source: source.rel)
    return found, problems


def find_sources(source_dir: Path, pattern: str) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """(path, relative path) of every matching file, sorted; see scan_sources."""
    found, problems = scan_sources(source_dir, pattern)
    return [(Path(source.path), source.rel) for source in found], problems


def decode(raw: bytes, where: str) -> tuple[str | None, list[Problem]]:
    """UTF-8 (with or without BOM); UTF-16/32 are read with a warning."""
    boms = (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    )
    for bom, codec in boms:
        if raw.startswith(bom):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError:
                return None, [Problem(where, None, ERROR, f"file starts with a {codec.upper()} byte-order mark but is not valid {codec.upper()}")]
            return text.lstrip("\ufeff"), [Problem(where, None, WARNING, f"file is {codec.upper()}; read it, but save posts as UTF-8")]
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw[:4096]:
        # UTF-16 without a BOM: ASCII characters leave a NUL in every other byte
        head = raw[:4096]
        even, odd = head[0::2].count(0), head[1::2].count(0)
        codec = "utf-16-le" if odd > even else "utf-16-be"
        if max(even, odd) * 4 >= len(head) // 2:
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError:
                text = None
            if text is not None:
                return text.lstrip("\ufeff"), [Problem(where, None, WARNING, f"file is {codec.upper()} without a byte-order mark; read it, but save posts as UTF-8")]
    try:
        return raw.decode("utf-8").lstrip("\ufeff"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        hint = " (GBK/GB18030?)" if b"\x00" not in raw and _looks_gb(raw) else ""
        return None, [
            Problem(where, line, ERROR, f"not UTF-8{hint}: byte 0x{bad} at column {column}; save the file as UTF-8")
        ]


def _looks_gb(raw: bytes) -> bool:
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def _key_lines(fm: str, first_line: int) -> tuple[dict[str, int], list[tuple[str, int]]]:
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int]] = []
    for offset, line in enumerate(fm.split("\n")):
        match = _TOP_KEY.match(line)
        if match:
            key = match.group(1).strip()
            if key in lines:
                duplicates.append((key, first_line + offset))
            lines[key] = first_line + offset
    return lines, duplicates


def _yaml_problem(exc: Exception, first_line: int) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = first_line + mark.line if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else problem
    return line, f"invalid YAML front matter: {text}"


def load_yaml(text: str):
    """The front matter's value; any failure to read it is a yaml.YAMLError.

    PyYAML raises ValueError or KeyError, not YAMLError, for a value its
    explicit tag cannot hold (`!!int x`, `!!bool maybe`, `!!timestamp
    2021-13-45`), and nesting a few hundred levels deep exhausts the stack:
    both would otherwise escape as a traceback and stop the whole build.
    """
    tools = front_matter_yaml()
    try:
        return tools.handler.load(text, Loader=tools.loader)
    except RecursionError:
        raise tools.yaml.YAMLError("front matter nests too deeply") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise tools.yaml.YAMLError(f"a value does not fit its tag ({exc})") from None


def _repair(fm: str) -> tuple[str, list[int]]:
    """Re-quote top-level scalar lines that YAML cannot read on their own.

    Scrapers write titles like `"""'Swift：解包'"""` or `title: a: b`; the
    repaired value keeps every character but the runaway quotes.
    """
    yaml_error = front_matter_yaml().yaml.YAMLError
    out = []
    repaired = []
    for index, line in enumerate(fm.split("\n")):
        match = _SCALAR_LINE.match(line)
        if match and match.group(1) in _REPAIRABLE_KEYS and match.group(2)[0] not in "[{&*!|>":
            try:
                load_yaml(line)
            except yaml_error:
                key, value = match.groups()
                stripped = _QUOTE_RUNS.sub("", value)
                line = f"{key}: '" + stripped.replace("'", "''") + "'"
                repaired.append(index)
        out.append(line)
    return "\n".join(out), repaired


def _lines(text: str):
    """(number from 0, line, where it starts, where the next starts) for each '\n'-separated line, as needed."""
    number = begin = 0
    while True:
        end = text.find("\n", begin)
        if end < 0:
            yield number, text[begin:], begin, len(text)
            return
        yield number, text[begin:end], begin, end + 1
        number += 1
        begin = end + 1


def split_post(text: str, where: str) -> tuple[dict | None, str, int, dict[str, int], list[Problem]]:
    """→ (meta, body, body_line, key_lines, problems); meta is None on error."""
    problems: list[Problem] = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text or text.isspace():
        return None, "", 1, {}, [Problem(where, None, ERROR, "empty file: no front matter and no body")]
    # only the lines up to the closing '---' are cut apart; the body is sliced off whole
    lines = _lines(text)
    # the mirror writes a blank line before the opening '---'
    start, line, _, fm_start = next((number, line, begin, after) for number, line, begin, after in lines if line.strip())
    if not _FENCE.match(line):
        problems.append(Problem(where, start + 1, WARNING, "no front matter ('---' before the first text): title taken from the file name"))
        return {}, text, 1, {}, problems
    for close, line, close_start, body_start in lines:
        if _FENCE.match(line):
            break
    else:
        return None, "", 1, {}, [Problem(where, start + 1, ERROR, f"front matter opened with '---' on line {start + 1} is never closed")]
    fm = text[fm_start : close_start - 1]
    if _CONTROL.search(fm):
        fm_lines = fm.split("\n")
        for offset, line in enumerate(fm_lines):
            if _CONTROL.search(line):
                found = sorted({f"U+{ord(ch):04X}" for ch in _CONTROL.findall(line)})
                problems.append(Problem(where, start + 2 + offset, WARNING, f"control character {', '.join(found)} in the front matter: removed"))
                fm_lines[offset] = _CONTROL.sub("", line)
        fm = "\n".join(fm_lines)
    body = text[body_start:]
    body_line = close + 2
    first_line = start + 2
    key_lines, duplicates = _key_lines(fm, first_line)
    for key, line in duplicates:
        problems.append(Problem(where, line, WARNING, f"key '{key}' given twice: the last one counts"))
    yaml_error = front_matter_yaml().yaml.YAMLError
    try:
        meta = load_yaml(fm) if fm.strip() else {}
    except yaml_error as exc:
        repaired_fm, repaired = _repair(fm)
        try:
            meta = load_yaml(repaired_fm) if repaired else None
        except yaml_error:
            meta = None
        if meta is None:
            line, message = _yaml_problem(exc, first_line)
            return None, body, body_line, key_lines, [*problems, Problem(where, line, ERROR, message)]
        for index in repaired:
            problems.append(
                Problem(where, index + first_line, WARNING, "value is not valid YAML (stray quotes or ': '): read as plain text")
            )
    if meta is None:
        meta = {}
    if _too_big(meta):
        return None, body, body_line, key_lines, [
            *problems,
            Problem(where, first_line, ERROR, f"front matter expands to more than {MAX_META_NODES} values (YAML aliases?): not read"),
        ]
    if not isinstance(meta, dict):
        kind = type(meta).__name__
        return None, body, body_line, key_lines, [
            *problems,
            Problem(where, first_line, ERROR, f"front matter is a YAML {kind}, not a mapping of key: value"),
        ]
    meta = {str(k): v for k, v in meta.items()}
    return meta, body, body_line, key_lines, problems


def _too_big(value) -> bool:
    """Count values the way code that walks them would, and stop early."""
    budget = MAX_META_NODES
    pending = [value]
    while pending:
        item = pending.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, str) and len(item) > 1_000_000:
            return True
    return False


def read_post(path: Path, rel: str, display: str | None = None) -> tuple[Post | None, list[Problem]]:
    """Read one file into a Post, or report why not."""
    where = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [Problem(where, None, ERROR, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(where, None, ERROR, f"cannot read post: {exc.strerror or exc}")]
    return parse_post_bytes(raw, path, rel, where)


def parse_post_bytes(raw: bytes, path: Path, rel: str, where: str) -> tuple[Post | None, list[Problem]]:
    text, problems = decode(raw, where)
    if text is None:
        return None, problems
    meta, body, body_line, key_lines, more = split_post(text, where)
    problems += more
    if meta is None:
        return None, problems
    return Post(path=path, rel=rel, meta=meta, body=body, body_line=body_line, meta_lines=key_lines), problems
