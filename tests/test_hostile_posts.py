"""Hostile posts: every case in tests/hostile/EXPECTED.toml, then the CLI on all of them.

Each case is published next to one known-good post. Whatever the case,
the pipeline must not raise, must report each problem on one line that
starts with the file's displayed path, must still publish the good post,
must produce well-formed XML and valid JSON, and must write nothing outside
the output folder. The case's table adds the expected outcome.

Cases marked `xfail` in EXPECTED.toml are bugs in the package today (strict
xfails: they fail the suite once fixed, so the marker gets removed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Callable

import lxml.html
import pytest
from lxml import etree

from conftest import make_config, post_text
from feeds.build import OutputError, build_in_memory, write_tree
from feeds.model import ERROR, WARNING, printable

HOSTILE = Path(__file__).resolve().parent / "hostile"
GOOD = "0-known-good.md"
GOOD_TITLE = "Known good"
DATE = "date: 2021-11-16 09:34:36"
MAX_MESSAGE = 1000
DEFAULT_SECONDS = 30  # CPU seconds a case may take (max_seconds in EXPECTED.toml)
HANG_SECONDS = 300  # wall-clock guard against a blocking read
XML_PARSER = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)
LINE_RE = re.compile(r"^(:\d+)?: (error|warning): \S")

with open(HOSTILE / "EXPECTED.toml", "rb") as _handle:
    EXPECTED: dict[str, dict] = tomllib.load(_handle)


def _load_generator():
    spec = importlib.util.spec_from_file_location("hostile_make_fixtures", HOSTILE / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- generated cases
# Each builder writes its files below `posts` and returns the path (relative
# to `posts`) of the file the case is about.


def _post(title: str, body: str = "<p>Body text.</p>", *extra: str) -> str:
    return "---\n" + "\n".join([f"title: '{title}'", DATE, *extra]) + "\n---\n" + body + "\n"


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def gen_big_body_5mb(posts: Path) -> str:
    _write(posts / "big_body_5mb.md", _post("Five megabytes", "<p>" + "word " * 1_048_576 + "</p>"))
    return "big_body_5mb.md"


def gen_oversize_file(posts: Path) -> str:
    with open(posts / "oversize_file.md", "wb") as handle:
        handle.write(_post("Too big").encode())
        handle.truncate(17 * 1024 * 1024)  # sparse: cheap to make, never read
    return "oversize_file.md"


def gen_long_title(posts: Path) -> str:
    _write(posts / "long_title.md", _post("t" * 1_000_000))
    return "long_title.md"


def gen_deep_nesting_span(posts: Path) -> str:
    _write(posts / "deep_nesting_span.md", _post("Deep spans", "<span>" * 20_000 + "deep text"))
    return "deep_nesting_span.md"


def gen_deep_nesting_div(posts: Path) -> str:
    _write(posts / "deep_nesting_div.md", _post("Deep divs", "<div>" * 20_000 + "deep text" + "</div>" * 20_000))
    return "deep_nesting_div.md"


def gen_yaml_deep_nesting(posts: Path) -> str:
    _write(posts / "yaml_deep_nesting.md", "---\ntitle: Deep YAML\ntags: " + "[" * 20_000 + "]" * 20_000 + "\n" + DATE + "\n---\n<p>x</p>\n")
    return "yaml_deep_nesting.md"


def gen_dir_named_md(posts: Path) -> str:
    _write(posts / "x.md" / "inside.md", _post("Inside x.md"))
    return "x.md/inside.md"


def gen_symlink_loop(posts: Path) -> str:
    _write(posts / "loop" / "in-loop.md", _post("In a loop"))
    os.symlink("..", posts / "loop" / "up")
    os.symlink(".", posts / "loop" / "self")
    return "loop/in-loop.md"


def gen_symlink_broken(posts: Path) -> str:
    os.symlink("nowhere.md", posts / "symlink_broken.md")
    return "symlink_broken.md"


def gen_fifo(posts: Path) -> str:
    os.mkfifo(posts / "fifo.md")
    return "fifo.md"


def gen_filename_not_utf8(posts: Path) -> str:
    name = os.fsdecode(b"bad\xff\xfe.md")
    with open(os.path.join(os.fsencode(posts), b"bad\xff\xfe.md"), "wb") as handle:
        handle.write(b"---\ntitle: Bad file name\n---\n<p>x</p>\n")
    return name


def gen_filename_newline(posts: Path) -> str:
    _write(posts / "new\nline.md", "---\ntitle: Newline in the file name\n---\n<p>x</p>\n")
    return "new\nline.md"


def gen_category_path_too_long(posts: Path) -> str:
    names = [f"c{i:02d}" + "x" * 150 for i in range(40)]
    _write(posts / "category_path_too_long.md", _post("Deep categories", "<p>x</p>", "categories:", *(f" - {n}" for n in names)))
    return "category_path_too_long.md"


def gen_id_path_too_long(posts: Path) -> str:
    _write(posts / "id_path_too_long.md", _post("Long id", "<p>x</p>", "id: " + "/".join(["y" * 200] * 25)))
    return "id_path_too_long.md"


GENERATORS: dict[str, Callable[[Path], str]] = {
    name[len("gen_") :]: func for name, func in globals().items() if name.startswith("gen_")
}
NEEDS = {"symlink_loop": "symlink", "symlink_broken": "symlink", "fifo": "mkfifo"}
SLOW: set[str] = set()  # cases kept out of the CLI runs


def build_case(name: str, posts: Path) -> str:
    """Put case `name` below `posts`; → its path relative to `posts`."""
    if EXPECTED[name].get("generated"):
        need = NEEDS.get(name)
        if need and not hasattr(os, need):
            pytest.skip(f"no os.{need} here")
        if name == "filename_not_utf8" and sys.platform in ("darwin", "win32"):
            pytest.skip("file system refuses non-UTF-8 names")
        return GENERATORS[name](posts)
    shutil.copyfile(HOSTILE / f"{name}.md", posts / f"{name}.md")
    return f"{name}.md"


# ---------------------------------------------------------------- helpers


@contextlib.contextmanager
def time_limit(seconds: float, cpu: bool):
    """Raise TimeoutError in this (main) thread after `seconds` of CPU time, or of wall time.

    CPU time measures the work itself, whatever else the machine is doing; wall
    time also catches a hang that burns no CPU (a blocking read).
    """
    if not hasattr(signal, "setitimer"):
        yield
        return
    timer, signum = (signal.ITIMER_PROF, signal.SIGPROF) if cpu else (signal.ITIMER_REAL, signal.SIGALRM)

    def expire(_signum, _frame):
        raise TimeoutError(f"still running after {seconds} s of {'CPU' if cpu else 'wall'} time")

    previous = signal.signal(signum, expire)
    signal.setitimer(timer, seconds)
    try:
        yield
    finally:
        signal.setitimer(timer, 0)
        signal.signal(signum, previous)


def snapshot(root: Path, skip: tuple[str, ...]) -> dict[str, tuple]:
    """Every entry below root (links not followed), minus the `skip` top-level names."""
    out: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel_folder = os.path.relpath(folder, root)
        if rel_folder == ".":
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def check_outputs(resources) -> None:
    for site_path, resource in resources.items():
        assert not any(part in (".", "..") for part in site_path.split("/")[1:]), site_path
        if site_path.endswith(".xml"):
            try:
                etree.fromstring(resource.body, XML_PARSER)
            except etree.XMLSyntaxError as exc:
                pytest.fail(f"{site_path} is not well-formed XML: {exc}")
        elif site_path.endswith(".json"):
            try:
                json.loads(resource.body.decode("utf-8"))
            except ValueError as exc:
                pytest.fail(f"{site_path} is not valid JSON: {exc}")
        else:
            resource.body.decode("utf-8")


def check_inert(html: str, where: str) -> None:
    """No script element, event-handler attribute or javascript: URL."""
    if not html.strip():
        return
    tree = lxml.html.fromstring(html) if html.lstrip().lower().startswith(("<!doctype", "<html")) else lxml.html.fragment_fromstring(html, create_parent="div")
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag.lower() not in ("script", "svg", "object", "embed"), f"{where}: <{element.tag}> survived"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: {name}={value!r} survived"
            assert not re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith("javascript:"), f"{where}: {name}={value!r}"


def display_of(problem_path: str, root: Path) -> str:
    """A problem's path relative to the run folder (catalog problems name the config absolutely)."""
    if os.path.isabs(problem_path):
        return os.path.relpath(problem_path, root)
    return problem_path


def check_problem_lines(problems) -> None:
    for problem in problems:
        line = str(problem)
        assert "\n" not in line and "\r" not in line, f"problem spans several lines: {line!r}"
        assert len(line) <= MAX_MESSAGE, f"problem is {len(line)} characters long: {line[:200]!r}…"
        assert line.startswith(printable(problem.path)), line
        assert LINE_RE.match(line[len(printable(problem.path)) :]), f"not 'path[:line]: error|warning: message': {line!r}"
        assert problem.severity in (ERROR, WARNING)


def matches(problem, want: dict, default_path: str, root: Path) -> bool:
    if display_of(problem.path, root) != want.get("path", default_path):
        return False
    if want["severity"] != "*" and problem.severity != want["severity"]:
        return False
    if want["message"] not in problem.message:
        return False
    if "line" in want:
        expected_line = None if want["line"] == "none" else want["line"]
        if problem.line != expected_line:
            return False
    return True


def require_problems(wanted: list[dict], problems: list, default_path: str, root: Path) -> set[int]:
    """Each wanted problem matched to a distinct actual one; → indices used."""
    used: set[int] = set()
    for want in wanted:
        hit = next((i for i, p in enumerate(problems) if i not in used and matches(p, want, default_path, root)), None)
        assert hit is not None, f"expected {want} among:\n" + "\n".join(str(p) for p in problems)
        used.add(hit)
    return used


def run_case(name: str, tmp_path: Path, monkeypatch) -> None:
    expect = EXPECTED[name]
    root = tmp_path.resolve()
    posts = root / "posts"
    posts.mkdir()
    (posts / GOOD).write_text(post_text(title=GOOD_TITLE, body="<p>Known good body</p>"), encoding="utf-8")
    rel = build_case(name, posts)
    subject = f"posts/{rel}"
    monkeypatch.chdir(root)
    config = make_config(posts, root)
    before = snapshot(root, ("public", ".public.builds"))

    with time_limit(HANG_SECONDS, cpu=False), time_limit(expect.get("max_seconds", DEFAULT_SECONDS), cpu=True):
        state, resources = build_in_memory(config)

    problems = state.problems
    check_problem_lines(problems)
    assert not [p for p in problems if display_of(p.path, root) == f"posts/{GOOD}"], "the good post got problems"
    allowed_paths = {subject} | {w["path"] for w in expect.get("problems", []) if "path" in w}
    strays = [str(p) for p in problems if display_of(p.path, root) not in allowed_paths]
    assert not strays, f"problems about other files: {strays}"

    good = [a for a in state.catalog.articles if a.source == GOOD]
    assert len(good) == 1 and good[0].title == GOOD_TITLE, "the known-good post was not published"
    articles = [a for a in state.catalog.articles if a.source == rel]
    published = bool(articles)
    assert len(articles) <= 1
    own_errors = [p for p in problems if p.severity == ERROR and display_of(p.path, root) == subject]

    used = require_problems(expect.get("problems", []), problems, subject, root)
    want_published = expect["published"]
    if want_published == "either":
        if not published:
            used |= require_problems(expect.get("problems_if_unpublished", []), problems, subject, root)
            assert own_errors, "an unpublished post needs an error saying why"
    elif want_published:
        assert published, "not published:\n" + "\n".join(map(str, problems))
        assert not own_errors, f"published, yet reported as errors: {[str(p) for p in own_errors]}"
    else:
        assert not published, "published, but should not be"
        if expect.get("draft"):
            assert state.load.drafts == 1 and not own_errors
        else:
            assert own_errors, "not published, and no error says why"
    unlisted_errors = [str(p) for i, p in enumerate(problems) if i not in used and p.severity == ERROR]
    assert not unlisted_errors, f"unexpected errors: {unlisted_errors}"

    if published:
        article = articles[0]
        for key in ("title", "id", "summary"):
            if key in expect:
                assert getattr(article, key) == expect[key], key
        if "categories" in expect:
            assert [list(h) for h in article.categories] == expect["categories"]
        if "tags" in expect:
            assert list(article.tags) == expect["tags"]
        for text in expect.get("title_lacks", []):
            assert text not in article.title
        for text in expect.get("summary_lacks", []):
            assert text not in article.summary
        for text in expect.get("body_contains", []):
            assert text in article.body, f"{text!r} not in body {article.body[:300]!r}"
        for text in expect.get("body_lacks", []):
            assert text not in article.body, f"{text!r} in body"
        for text, count in expect.get("body_counts", {}).items():
            assert article.body.count(text) == count, f"{text!r} occurs {article.body.count(text)} times, not {count}"
        if expect.get("inert"):
            check_inert(article.body, "body")
            for site_path, resource in resources.items():
                if site_path.endswith(".html"):
                    check_inert(resource.body.decode("utf-8"), site_path)
    if expect.get("no_problems"):
        mine = [str(p) for p in problems if display_of(p.path, root) == subject]
        assert not mine, f"expected no problems, got {mine}"
    for site_path in expect.get("feeds", []):
        assert site_path in resources, f"{site_path} not published; have {sorted(p for p in resources if p.count('/') > 1)[:40]}"
    assert f"/posts/{GOOD[:-3]}/index.html" in resources
    check_outputs(resources)

    # the static writer: only the output link and its builds folder may appear
    report = write_tree(config.output.dir, resources.items())
    assert snapshot(root, ("public", ".public.builds")) == before, "something was written outside the output folder"
    out = root / "public"
    builds = root / ".public.builds"
    assert out.is_symlink() and out.resolve().parent == builds
    written = snapshot(builds, ())
    assert all(not os.path.islink(builds / p) for p in written), "a link inside the build"
    assert report.files == len(resources)


EXCEPTIONS = {"OverflowError": OverflowError, "OutputError": OutputError, "TimeoutError": TimeoutError}


def params(names):
    for name in names:
        expect = EXPECTED[name]
        marks = []
        if "xfail" in expect:
            raises = EXCEPTIONS[expect["xfail_raises"]] if "xfail_raises" in expect else AssertionError
            marks.append(pytest.mark.xfail(strict=True, raises=raises, reason=expect["xfail"]))
        yield pytest.param(name, marks=marks, id=name)


# ---------------------------------------------------------------- tests


def test_fixtures_match_their_generator_and_expectations():
    wanted = _load_generator().build()
    on_disk = {p.name: p.read_bytes() for p in HOSTILE.glob("*.md")}
    assert on_disk == wanted, "run `python tests/hostile/make_fixtures.py` and commit the result"
    for name, expect in EXPECTED.items():
        if expect.get("generated"):
            assert name in GENERATORS, f"{name}: generated, but no gen_{name}()"
        else:
            assert f"{name}.md" in on_disk, f"{name}: no tests/hostile/{name}.md"
        assert expect["published"] in (True, False, "either"), name
    assert {p[:-3] for p in on_disk} <= set(EXPECTED), "a fixture without an expectation"
    for name, data in wanted.items():
        assert len(data) < 4096, f"{name}: keep committed fixtures tiny"


@pytest.mark.parametrize("name", list(params(EXPECTED)))
def test_hostile_post(name, tmp_path, monkeypatch):
    run_case(name, tmp_path, monkeypatch)


# ---------------------------------------------------------------- the CLI on everything


STDERR_LINE = re.compile(r"^[^:]+(:\d+)?: (error|warning): .+")
SUMMARY = re.compile(r"^published (\d+) of (\d+) posts")
GOOD_POSTS = {
    "0-good-1.md": post_text(title="Good one", body="<p>First good body</p>"),
    "0-good-2.md": post_text(title="Good two", categories=("源",), body="<pre>a\tb</pre>"),
    "zz-good-3.md": post_text(title="Good three", categories=("频道", "子"), body="<p>Third</p>"),
}


def run_cli(tmp_path: Path, names: list[str], workers: int) -> tuple[subprocess.CompletedProcess, str, str, Path]:
    root = tmp_path.resolve()
    posts = root / "posts"
    posts.mkdir()
    for file, text in GOOD_POSTS.items():
        (posts / file).write_text(text, encoding="utf-8")
    for name in names:
        build_case(name, posts)
    (root / "config.toml").write_text(
        "[site]\ntitle = 'Hostile'\nurl = 'http://127.0.0.1:8000'\ntimezone = 'Asia/Shanghai'\n"
        f"[source]\ndir = 'posts'\n[output]\ndir = 'public'\n[build]\ncache_dir = 'cache'\nworkers = {workers}\n",
        encoding="utf-8",
    )
    before = snapshot(root, ("public", ".public.builds", "cache"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "feeds", "build", "--config", "config.toml"],
        cwd=root, capture_output=True, timeout=300, env=env,
    )
    assert snapshot(root, ("public", ".public.builds", "cache")) == before, "something was written outside the output folder"
    return proc, proc.stdout.decode("utf-8", "backslashreplace"), proc.stderr.decode("utf-8", "backslashreplace"), root


def check_cli(proc, stdout: str, stderr: str, root: Path, expected_posts: int) -> None:
    assert "Traceback" not in stdout + stderr, stderr[-3000:]
    assert proc.returncode == 1, f"exit {proc.returncode}\n{stderr[-3000:]}"
    bad = [line for line in stderr.splitlines() if not STDERR_LINE.match(line)]
    assert not bad, f"stderr lines not 'path[:line]: error|warning: message': {bad[:10]}"
    summary = [m for m in map(SUMMARY.match, stdout.splitlines()) if m]
    assert summary, stdout
    assert int(summary[0].group(2)) == expected_posts
    public = root / "public"
    for file, text in GOOD_POSTS.items():
        page = public / "posts" / file[:-3] / "index.html"
        assert page.is_file(), f"{file} not published"
    site_feed = etree.parse(str(public / "atom.xml"), XML_PARSER)
    titles = {e.text for e in site_feed.iter("{http://www.w3.org/2005/Atom}title")}
    assert {"Good one", "Good two", "Good three"} <= titles
    for folder, _dirs, files in os.walk(public.resolve()):
        for file in files:
            data = Path(folder, file).read_bytes()
            if file.endswith(".xml"):
                etree.fromstring(data, XML_PARSER)
            elif file.endswith(".json"):
                json.loads(data.decode("utf-8"))


def _cli_cases(bugs: bool) -> list[str]:
    names = []
    for name, expect in EXPECTED.items():
        if name in SLOW or ("xfail" in expect) != bugs:
            continue
        if name in NEEDS and not hasattr(os, NEEDS[name]):
            continue
        if name == "filename_not_utf8" and sys.platform in ("darwin", "win32"):
            continue
        names.append(name)
    return names


def _count_files(names: list[str]) -> int:
    """Post files the build will find: fixtures, generated posts, the good posts."""
    uncounted = {"symlink_broken": 0, "fifo": 0}  # reported while walking, never read
    return len(GOOD_POSTS) + sum(uncounted.get(n, 1) for n in names)


def test_cli_build_on_every_hostile_post(tmp_path):
    """All passing cases in one folder, built by worker processes."""
    names = _cli_cases(bugs=False)
    proc, stdout, stderr, root = run_cli(tmp_path, names, workers=2)
    check_cli(proc, stdout, stderr, root, _count_files(names))
