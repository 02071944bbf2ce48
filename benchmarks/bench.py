"""End-to-end benchmark of `feeds` on a synthetic mirror-shaped corpus.

    .venv/bin/python benchmarks/bench.py --posts 1000 [--json out.json]
        [--skip-serve] [--skip-naive] [--skip-nh3] [--skip-html5lib] [--skip-hugo] [--hugo-content md|html]
        [--keep DIR] [--workers N] [--seed S] [--rounds R] [--reference FILE]

One run: generate N synthetic posts (seeded; not timed) → R rounds of:
bleach alone, cold `feeds build` (a subprocess: wall time and peak memory
of the process tree), cold builds with `[sanitize] engine = "nh3"` and
`"bleach-html5lib"`, Hugo
full build of the same posts (if `hugo` is on PATH); each judged on its
fastest round → no-change and one-post-changed rebuilds → naive
single-process script → `feeds serve` vs nginx under wrk. Prints one markdown table (PASS/MISS per
target) and optionally the raw numbers as JSON. Always exits 0 unless the
benchmark itself cannot run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
FEEDS = str(VENV_BIN / "feeds") if (VENV_BIN / "feeds").exists() else shutil.which("feeds") or "feeds"

MB = 1024 * 1024
RELOAD_SECONDS = 2  # the live server's [server] reload_seconds: a new post must be served within it + 1 s

# --------------------------------------------------------------------------
# 1. synthetic corpus
# --------------------------------------------------------------------------

LATIN_SYLLABLES = "ka lo mi ra te su vin dor pel ax quo zen bri tal mor fen gus hal ot ri ne sa".split()


class Synth:
    """Deterministic random text: CJK characters from the unified block, made-up Latin words."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        # a fixed pool of CJK characters drawn at random from U+4E00..U+9FA5
        self.cjk_pool = [chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(900)]
        self.latin_pool = ["".join(rng.choice(LATIN_SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(600)]

    def cjk_word(self) -> str:
        return "".join(self.rng.choice(self.cjk_pool) for _ in range(self.rng.randint(1, 4)))

    def latin_word(self) -> str:
        return self.rng.choice(self.latin_pool)

    def sentence(self, cjk_share: float = 0.8) -> str:
        rng = self.rng
        words = []
        for _ in range(rng.randint(6, 24)):
            if rng.random() < cjk_share:
                words.append(self.cjk_word())
            else:
                words.append((" " if words else "") + self.latin_word() + " ")
        text = "".join(words).replace("  ", " ")
        return text + rng.choice("。。。，！？") if cjk_share > 0.5 else text.strip().capitalize() + "."

    def title(self) -> str:
        rng = self.rng
        t = "".join(self.cjk_word() for _ in range(rng.randint(3, 8)))
        if rng.random() < 0.3:
            t = f"{self.latin_word().capitalize()} {t}"
        if rng.random() < 0.2:  # scrapers replaced : / ? " with _
            t = t[: len(t) // 2] + "_" + t[len(t) // 2 :]
        if rng.random() < 0.05:
            t += rng.choice(["📈", "✌️", "©", "㎡", "&&", "..."])
        return t


def make_categories(synth: Synth, rng: random.Random):
    """8 groups × 4 sources × 3 feeds: (group, source, feed, date_style) per leaf."""
    leaves = []
    used = set()

    def unique(make):
        while True:
            name = make()
            if name not in used:
                used.add(name)
                return name

    for g in range(8):
        group = unique(lambda: synth.cjk_word()[:2].ljust(2, synth.cjk_pool[0]))
        for s in range(4):
            kind = rng.random()
            if kind < 0.5:
                source = unique(lambda: synth.cjk_word() + synth.cjk_word())
            elif kind < 0.85:
                source = unique(lambda: f"{synth.latin_word().capitalize()} {synth.latin_word().capitalize()}")
            else:
                source = unique(lambda: f"{synth.cjk_word()} && {synth.cjk_word()}")
            style = rng.choices(["rfc", "naive", "mixed", "invalid"], [0.6, 0.25, 0.1, 0.05])[0]
            for f in range(3):
                feed = unique(lambda: synth.cjk_word() if rng.random() < 0.7 else synth.latin_word().capitalize())
                leaves.append((group, source, feed, style))
    return leaves


def leaf_sizes(n: int, count: int, rng: random.Random) -> list[int]:
    """Zipf-skewed sizes, plus a fixed tail of small feeds (rarely updated sources)."""
    tail = [2, 3, 5, 7] if n >= 200 else []
    rest = n - sum(tail)
    ranks = list(range(1, count - len(tail) + 1))
    rng.shuffle(ranks)
    weights = [1.0 / r for r in ranks]
    total = sum(weights)
    sizes = [max(1, int(rest * w / total)) for w in weights]
    order = sorted(range(len(sizes)), key=lambda i: -weights[i])
    i = 0
    while sum(sizes) < rest:
        sizes[order[i % len(order)]] += 1
        i += 1
    while sum(sizes) > rest and any(x > 1 for x in sizes):
        j = order[i % len(order)]
        if sizes[j] > 1:
            sizes[j] -= 1
        i += 1
    return sizes + tail


def img_url(rng: random.Random) -> str:
    host = rng.choice(["img1.example-cdn.net", "pics.example.org", "static.example.com"])
    ext = rng.choice([".jpg", ".png", ".webp", ".gif", ""])
    suffix = rng.choice(["", "", "@s_2,w_820,h_410", "?imageView2/2/w/640", "!custom"])
    return f"https://{host}/{rng.randint(2019, 2022)}/{rng.getrandbits(48):012x}{ext}{suffix}"


QR_IMG = "https://qr.example-cdn.net/ad/qr-code-app.png"


def ad_block(synth: Synth) -> str:
    return (
        "\n            <!-- " + synth.cjk_word() + " start -->\n"
        "            <style>\n"
        "            .appendQr_wrap&#123;margin:12px 0;border:2px dashed #ccc;&#125;\n"
        "            .appendQr_normal&#123;display:inline-block;&#125;\n"
        "            .appendQr_normal img&#123;height:80px;&#125;\n"
        "            .appendQr_normal_txt&#123;display:inline-block;color:#555;font-size:18px;&#125;\n"
        "            </style>\n"
        '            <div class="clearfix appendQr_wrap">\n'
        f'                <div class="appendQr_normal"><img src="{QR_IMG}" referrerpolicy="no-referrer"></div>\n'
        f'                <div class="appendQr_normal_txt">{synth.cjk_word()}{synth.cjk_word()}APP</div>\n'
        "            </div>\n"
        "            <!-- " + synth.cjk_word() + " end -->\n"
    )


def make_body(synth: Synth, rng: random.Random, target: int, title: str, sina_like: bool) -> tuple[str, list[str]]:
    """HTML of about `target` UTF-8 bytes; returns (body, image urls in it)."""
    parts: list[str] = []
    images: list[str] = []
    size = 0
    if sina_like and rng.random() < 0.5:
        parts.append(f'<p class="ori_titlesource">\u3000\u3000原标题：{title.replace("_", "“")}</p>\n')
    blocks = ["p", "img", "lazy", "pre", "comment", "style", "h2", "ul", "quote", "table", "empty", "hidden"]
    weights = [50, 10, 6, 5, 6, 3, 5, 5, 3, 2, 3, 2]
    while size < target:
        kind = rng.choices(blocks, weights)[0]
        if kind == "p":
            text = "".join(synth.sentence(0.85 if rng.random() < 0.8 else 0.1) for _ in range(rng.randint(1, 5)))
            r = rng.random()
            if r < 0.15:
                text = f'{text[:20]}<font cms-style="font-L strong-Bold">{text[20:60]}</font>{text[60:]}'
            elif r < 0.3:
                text = f'{text}<a href="https://www.example.com/go?id={rng.randint(1, 99999)}&from=feed&ref=a">{synth.cjk_word()}</a>'
            elif r < 0.35:
                text = f"{text} a && b, Optional<Int> -> {synth.latin_word()}"
            lead = "\u3000\u3000" if sina_like else ("\u00a0" if rng.random() < 0.05 else "")
            block = f'<p cms-style="font-L">{lead}{text}</p>\n' if sina_like else f"<p>{lead}{text}</p>\n"
        elif kind == "img":
            url = img_url(rng)
            images.append(url)
            if rng.random() < 0.3:
                block = f'<figure><img src="{url}" alt referrerpolicy="no-referrer"><figcaption>{synth.cjk_word()}</figcaption></figure>\n'
            else:
                block = f'<p><img src="{url}" referrerpolicy="no-referrer"></p>\n'
        elif kind == "lazy":
            url = img_url(rng)
            images.append(url)
            if rng.random() < 0.7:
                block = f'<p><img class="lazy" data-original="{url}" src="https://static.example.com/loading.gif" referrerpolicy="no-referrer"></p>\n'
            else:
                proto_rel = url.replace("https:", "", 1)
                block = f'<div class="image-view"><img data-original-src="{proto_rel}" data-original-width="610" referrerpolicy="no-referrer"></div>\n'
        elif kind == "pre":
            name = synth.latin_word()
            lines = [f"function {name}(a, b) &#123;"]
            for _ in range(rng.randint(2, 12)):
                lines.append(f"  if (a < b && {synth.latin_word()}) &#123; return Map<String, Int>(); &#125; // {synth.cjk_word()}")
            lines.append("&#125;")
            block = '<pre><code class="language-js">' + "\n".join(lines) + "\n</code></pre>\n"
        elif kind == "comment":
            block = rng.choice([f"<!-- {synth.cjk_word()}{synth.cjk_word()} -->\n", "<!---->\n", f"\n<!-- {synth.cjk_word()} start -->\n\n"])
        elif kind == "style":
            block = f"<style>.c{rng.randint(1, 99)}&#123;color:#{rng.getrandbits(24):06x};margin:0 auto;&#125; p&#123;line-height:1.8;&#125;</style>\n"
        elif kind == "h2":
            block = f'<h2 label="{synth.cjk_word()}" style>{synth.cjk_word()}{synth.cjk_word()}</h2>\n'
        elif kind == "ul":
            block = "<ul>\n" + "".join(f"<li>{synth.sentence()}</li>\n" for _ in range(rng.randint(2, 6))) + "</ul>\n"
        elif kind == "quote":
            block = f"<blockquote><p>{synth.sentence()}</p></blockquote>\n"
        elif kind == "table":
            rows = "".join(f"<tr><td>{synth.cjk_word()}</td><td>{rng.randint(1, 9999)}</td></tr>" for _ in range(rng.randint(2, 6)))
            block = f'<table><tbody>{rows}</tbody></table>\n'
        elif kind == "empty":
            block = rng.choice(["<p></p>\n", "<p><br></p>\n", "<p>\u00a0</p>\n"])
        else:  # hidden
            block = f'<a href="https://www.example.com/q/{rng.randint(1, 99999)}" hidden>{synth.cjk_word()}</a>\n'
        if rng.random() < 0.03:
            block = " " * rng.randint(20, 90) + block
        parts.append(block)
        size += len(block.encode())
    if sina_like or rng.random() < 0.05:
        parts.append(ad_block(synth))
        parts.append(f'\n<p class="article-editor">{synth.cjk_word()}：{synth.cjk_word()} </p>\n')
    return "".join(parts), images


def yaml_quote(title: str) -> str:
    if "'" in title:
        return '"' + title.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "'" + title + "'"


def generate(root: Path, n: int, seed: int) -> dict:
    """Write N posts under root/posts and return facts about them (not timed)."""
    rng = random.Random(seed)
    synth = Synth(rng)
    leaves = make_categories(synth, rng)
    sizes = leaf_sizes(n, len(leaves), rng)
    sina_sources = {leaves[i][1] for i in rng.sample(range(len(leaves)), 3)}
    posts_dir = root / "posts"
    start = datetime(2019, 1, 1, tzinfo=timezone.utc)
    span = (datetime(2022, 10, 1, tzinfo=timezone.utc) - start).total_seconds()
    old_cutoff = datetime(2021, 3, 1, tzinfo=timezone.utc)
    facts = {"posts": 0, "body_bytes": 0, "file_bytes": 0, "layouts": {"current": 0, "older": 0},
             "dates": {"rfc822": 0, "naive": 0, "invalid": 0}, "ad_blocks": 0, "leaves": len(leaves),
             "leaf_sizes": sorted(sizes, reverse=True)}
    files: list[Path] = []
    index = 0
    for (group, source, feed, style), count in zip(leaves, sizes):
        folder = posts_dir / group / source / feed
        folder.mkdir(parents=True, exist_ok=True)
        midnight = rng.random() < 0.2
        for _ in range(count):
            index += 1
            title = synth.title()
            moment = start + timedelta(seconds=rng.random() * span)
            if midnight:
                moment = moment.replace(hour=0, minute=0, second=0)
            older = moment < old_cutoff and rng.random() < 0.4
            target = int(rng.triangular(2000, 12000, 4500))
            sina = source in sina_sources
            body, images = make_body(synth, rng, target, title, sina)
            has_ad = "appendQr_wrap" in body
            facts["ad_blocks"] += has_ad
            date_style = style if style != "mixed" else rng.choice(["rfc", "naive"])
            if style == "invalid" and rng.random() < 0.85:
                date_style = "rfc"
            if date_style == "invalid" or rng.random() < 0.003:
                date = "Invalid Date"
                facts["dates"]["invalid"] += 1
            elif date_style == "naive":
                date = moment.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
                facts["dates"]["naive"] += 1
            else:
                date = format_datetime(moment, usegmt=True)
                facts["dates"]["rfc822"] += 1
            if older:
                facts["layouts"]["older"] += 1
                thumb = f"'{images[0]}'" if images and rng.random() < 0.3 else "''"
                head = (
                    f"---\ntitle: {yaml_quote(title)}\ncategories: \n    - {group}\n    - {source}\n    - {feed}\n\n"
                    f"author: {source}\ncomments: false\ndate: {date}\nthumbnail: {thumb}\n---\n"
                )
            else:
                facts["layouts"]["current"] += 1
                if has_ad and rng.random() < 0.5:
                    img = QR_IMG
                elif images and rng.random() < 0.7:
                    img = images[0]
                else:
                    img = f"https://picsum.photos/400/300?random={rng.randint(1, 9999)}"
                head = (
                    f"---\ntitle: {yaml_quote(title)}\ncategories: \n - {group}\n - {source}\n - {feed}\n"
                    f"headimg: '{img}'\nauthor: {source}\ncomments: false\ndate: {date}\nthumbnail: '{img}'\n---\n"
                )
            text = head + "\n<div>   \n" + body + "  \n</div>\n            "
            stem = re.sub(r"[/\\\s]+", "-", title)[:40].strip("-.") or "post"
            path = folder / f"{stem}-{index:05d}.md"
            data = text.encode("utf-8")
            path.write_bytes(data)
            files.append(path)
            facts["posts"] += 1
            facts["body_bytes"] += len(body.encode())
            facts["file_bytes"] += len(data)
    facts["files"] = [str(p) for p in files]
    return facts


def replicate(files: list[Path], copies: int, facts: dict) -> list[Path]:
    """Each generated post `copies` times in its own folder (new file names, so new ids).

    Generating 100,000 posts one by one takes ~40 min of random text; copies
    give the same shape (leaf sizes, dates, bodies, quirks) in a minute.
    """
    out = []
    for path in files:
        data = path.read_bytes()
        out.append(path)
        for copy in range(1, copies):
            twin = path.with_name(f"{path.stem}-c{copy}{path.suffix}")
            twin.write_bytes(data)
            out.append(twin)
    for key in ("posts", "body_bytes", "file_bytes"):
        facts[key] *= copies
    for key in ("layouts", "dates"):
        facts[key] = {k: v * copies for k, v in facts[key].items()}
    facts["ad_blocks"] *= copies
    facts["leaf_sizes"] = [size * copies for size in facts["leaf_sizes"]]
    facts["copies"] = copies
    return out


def write_config(root: Path, workers: int) -> Path:
    cfg = root / "config.toml"
    cfg.write_text(
        f"""[site]
title = "bench"
url = "http://127.0.0.1:8000"
description = "synthetic benchmark corpus"
language = "zh-CN"
timezone = "Asia/Shanghai"

[source]
dir = "posts"
pattern = "**/*.md"

[output]
dir = "public"

[build]
cache_dir = ".feeds-cache"
workers = {workers}

[feeds]
items = 50

[sanitize]
engine = "bleach"
drop_selectors = [".appendQr_wrap"]

[server]
host = "127.0.0.1"
workers = 0
reload_seconds = {RELOAD_SECONDS}
""",
        encoding="utf-8",
    )
    return cfg


def write_engine_config(cfg: Path, engine: str, name: str | None = None) -> Path:
    """A copy of the generated config with `[sanitize] engine` set, and its own cache and output folders (named after `name`, default the engine)."""
    name = name or engine
    text = cfg.read_text(encoding="utf-8")
    swaps = (('engine = "bleach"', f'engine = "{engine}"'),
             ('dir = "public"', f'dir = "public-{name}"'),
             ('cache_dir = ".feeds-cache"', f'cache_dir = ".feeds-cache-{name}"'))
    for old, new in swaps:
        if text.count(old) != 1:
            raise RuntimeError(f"generated config: expected exactly one {old!r}")
        text = text.replace(old, new)
    out = cfg.with_name(f"config-{name}.toml")
    out.write_text(text, encoding="utf-8")
    return out


def compile_package() -> str:
    """Write the feeds package's bytecode (as `pip install` does); what was done, for the record."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("feeds")
    if not (spec and spec.origin):
        return "package not found"
    ok = compileall.compile_dir(Path(spec.origin).parent, quiet=1)
    return "compiled" if ok else "compileall failed (modules compiled on every build)"


def package_fingerprint() -> str:
    """Digest of the installed feeds package's *.py files: feeds keys its cache on its own source,
    so an edit by someone else during the run invalidates the cache between builds."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("feeds")
    digest = hashlib.blake2b(digest_size=8)
    if spec and spec.origin:
        package = Path(spec.origin).parent
        for file in sorted(package.rglob("*.py")):
            digest.update(file.relative_to(package).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


SUMMARY = re.compile(r"published (\d+) of (\d+) posts .*?(\d+) processed, (\d+) from cache\).*?(\d+) files \((\d+) written, (\d+) unchanged\).*?; ([\d.]+)s")


def parse_summary(stdout: str) -> dict:
    m = SUMMARY.search(stdout)
    if not m:
        return {}
    keys = ("published", "files_in", "processed", "from_cache", "out_files", "written", "unchanged", "self_reported_s")
    return {k: (float(v) if k == "self_reported_s" else int(v)) for k, v in zip(keys, m.groups())}


def split_body(text: str) -> str:
    """The HTML after the front matter (the same text every tool sanitizes)."""
    end = text.index("\n---\n", 4)
    return text[end + 5 :]


# --------------------------------------------------------------------------
# process-tree memory
# --------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in _children(p):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid: int) -> dict:
    pids = [pid] + descendants(pid)
    per = {p: _status_kb(p).get("VmRSS", 0) for p in pids}
    return {"sum_kb": sum(per.values()), "per_process_kb": per, "pss_sum_kb": sum(_pss_kb(p) for p in pids)}


class TreeSampler(threading.Thread):
    """Polls a process and its descendants: per-process VmHWM, concurrent RSS and PSS sums."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.hwm: dict[int, int] = {}
        self.peak_rss_sum = 0
        self.peak_pss_sum = 0
        self._halt = threading.Event()
        self.ticks = 0

    def run(self) -> None:
        while not self._halt.is_set():
            pids = [self.pid] + descendants(self.pid)
            rss_sum = 0
            for p in pids:
                st = _status_kb(p)
                if st:
                    self.hwm[p] = max(self.hwm.get(p, 0), st.get("VmHWM", 0))
                    rss_sum += st.get("VmRSS", 0)
            self.peak_rss_sum = max(self.peak_rss_sum, rss_sum)
            if self.ticks % 4 == 0:  # PSS is dearer to read: every 4th tick
                self.peak_pss_sum = max(self.peak_pss_sum, sum(_pss_kb(p) for p in pids))
            self.ticks += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)


STARTED: list[subprocess.Popen] = []  # every process we start, for the finally blocks


def kill_tree(proc: subprocess.Popen, grace: float = 8.0, sig=signal.SIGTERM) -> None:
    """Signal the process, wait, then SIGKILL it and every descendant still there, by PID."""
    if proc.poll() is not None:
        return
    kids = descendants(proc.pid)
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    for pid in [proc.pid] + kids + descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    # reap nothing else: grandchildren get reparented to init once killed


def settle() -> float:
    """Write out every dirty page before a timed step; the seconds it took.

    The files a step writes (a generated corpus, a build's output) are
    written back to disk in the following seconds, and on this project's
    machines that writeback slows whatever runs then: bleach on the same 400
    bodies took 6.7-7.1 ms per body right after the corpus was generated and
    3.9-4.1 ms after bleach alone, in each of three runs. Bleach alone, timed
    first, was the step that paid for it, which loosened the cold limit.
    """
    t0 = time.perf_counter()
    os.sync()
    return round(time.perf_counter() - t0, 2)


def run_measured(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Run to completion; wall time, exit code, and memory of the whole process tree."""
    settled = settle()
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        STARTED.append(proc)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            sampler.stop()
            kill_tree(proc)
            raise
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    hwm = dict(sampler.hwm)
    main = hwm.pop(proc.pid, 0)
    stdout = log.with_suffix(".out").read_text(errors="replace")
    stderr = log.with_suffix(".err").read_text(errors="replace")
    return {
        "cmd": cmd,
        "settle_s": settled,
        "wall_s": round(wall, 3),
        "rc": proc.returncode,
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        # the largest VmHWM sampled: wait4's ru_maxrss also counts what the
        # process held before exec, and a child started with vfork borrows
        # this script's memory until then (it said 644 MB for a rebuild whose
        # every sample stayed under 50 MB)
        "max_rss_single_process_mb": round(max([main, *hwm.values()]) / 1024, 1),
        "main_peak_rss_mb": round(max(main, 0) / 1024, 1),
        "children_peak_rss_mb": [round(v / 1024, 1) for v in sorted(hwm.values(), reverse=True)],
        "sum_of_process_peaks_mb": round((main + sum(hwm.values())) / 1024, 1),  # upper bound (shared pages counted per process)
        "sampled_concurrent_rss_mb": round(sampler.peak_rss_sum / 1024, 1),
        "sampled_concurrent_pss_mb": round(sampler.peak_pss_sum / 1024, 1),
        "processes": 1 + len(hwm),
        "stdout_tail": stdout[-2000:],
        "stderr_lines": stderr.count("\n"),
        "stderr_errors": [l for l in stderr.splitlines() if ": error:" in l][:20],
        "stderr_other": [l for l in stderr.splitlines() if ": warning:" not in l and ": error:" not in l][:20],
        "warnings": sum(1 for l in stderr.splitlines() if ": warning:" in l),
        "summary": parse_summary(stdout),
    }


# --------------------------------------------------------------------------
# 2. bleach alone
# --------------------------------------------------------------------------

BLEACH_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "figcaption", "figure", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "u", "ul", "video", "source", "sub", "sup", "del", "ins", "dl", "dt", "dd", "s", "small",
}
BLEACH_ATTRS = {
    "*": ["title", "lang", "dir"],
    "a": ["href", "title", "rel"],
    "img": ["src", "alt", "title", "width", "height", "referrerpolicy"],
    "video": ["src", "poster", "controls", "width", "height"],
    "source": ["src", "type"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan", "scope"],
    "code": ["class"],
}


def bleach_cleaner():
    """The Cleaner bleach alone is timed with: the policy's tags and attributes, stripping."""
    import bleach

    return bleach.sanitizer.Cleaner(tags=BLEACH_TAGS, attributes=BLEACH_ATTRS, protocols={"http", "https", "mailto"}, strip=True, strip_comments=True)


def bleach_alone(bodies: list[str]) -> dict:
    cleaner = bleach_cleaner()
    cleaner.clean(bodies[0])  # warm
    t0, c0 = time.perf_counter(), time.process_time()
    out = 0
    for body in bodies:
        out += len(cleaner.clean(body))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = sum(len(b.encode()) for b in bodies)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "bodies": len(bodies), "input_mb": round(size / MB, 2),
            "output_mb": round(out / MB, 2), "mb_per_s": round(size / MB / wall, 2)}


def bleach_on_every_core(bodies: list[str], cores: int) -> dict:
    """bleach alone again, the bodies dealt out to one forked process per core: what the machine does on all cores at once.

    The cold-build target divides the one-process time by the number of
    cores, as if every core ran as fast alone as together. On this
    project's machines they do not always: the same cold build used 51 s of
    CPU in one half hour and 84 s in the next, while bleach in one process
    read 4.3-4.7 ms per body beside the first and 4.5-4.9 beside the second.
    Timed next to the build, this row tells the two apart.
    """
    bleach_cleaner().clean(bodies[0])  # import and warm before forking
    settle()
    t0 = time.perf_counter()
    children = []
    for k in range(cores):
        pid = os.fork()
        if pid == 0:  # a child: clean its share, leave without any cleanup of the parent's
            status = 1
            try:
                cleaner = bleach_cleaner()
                for body in bodies[k::cores]:
                    cleaner.clean(body)
                status = 0
            finally:
                os._exit(status)
        children.append(pid)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    wall = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"{failed} of {cores} bleach processes failed")
    return {"wall_s": round(wall, 3), "processes": cores}


PROBE_BODIES = 400


class SpeedProbe:
    """bleach alone on the same few hundred bodies, timed now and again through the run.

    This project's machines change speed by a quarter within minutes (a
    fixed pure-Python loop took 0.60 to 0.93 s in one sitting); the probe
    tells how fast the machine was next to each timed step, so that a
    verdict decided by that drift can be read as such.
    """

    def __init__(self, bodies: list[str]):
        self.bodies = bodies[:PROBE_BODIES]
        self.cleaner = bleach_cleaner()
        self.cleaner.clean(self.bodies[0])  # warm
        self.taken: dict[str, float] = {}

    def __call__(self, label: str) -> None:
        settle()
        t0 = time.perf_counter()
        for body in self.bodies:
            self.cleaner.clean(body)
        self.taken[label] = round((time.perf_counter() - t0) / len(self.bodies) * 1000, 3)  # ms per body


# --------------------------------------------------------------------------
# 2b. Hugo, from the same posts
# --------------------------------------------------------------------------

HUGO_INSTALL_HINT = "Debian/Ubuntu: apt-get install -y hugo"

HUGO_CONFIG = """\
baseURL = "http://127.0.0.1:8000/"
title = "bench"
languageCode = "zh-CN"
timeZone = "Asia/Shanghai"
# no sitemap/robots: feeds writes neither (its OPML has no Hugo counterpart here)
disableKinds = ["sitemap", "robotsTXT"]
# term titles as written in the posts (bench.py checks each term feed by its title)
capitalizeListTitles = false
pluralizeListTitles = false
# every feed lists every post of its term (Hugo's default is also -1)
rssLimit = -1

[services.rss]
limit = -1

[taxonomies]
category = "categories"
tag = "tags"
author = "authors"

[outputs]
home = ["HTML", "RSS"]
section = ["HTML", "RSS"]
taxonomy = ["HTML", "RSS"]
term = ["HTML", "RSS"]

[markup.goldmark.renderer]
unsafe = true
"""

# Minimal layouts (no theme): a page per post, an HTML list and an RSS 2.0 feed per
# home / section / taxonomy / term. Feeds carry the full rendered body, like feeds' entries.
HUGO_LAYOUTS = {
    "_default/baseof.html": """\
<!doctype html>
<html lang="{{ site.LanguageCode }}">
<head>
<meta charset="utf-8">
<title>{{ .Title }} · {{ site.Title }}</title>
{{- with .OutputFormats.Get "rss" }}
<link rel="alternate" type="application/rss+xml" href="{{ .RelPermalink }}">
{{- end }}
</head>
<body>
{{ block "main" . }}{{ end }}
</body>
</html>
""",
    "_default/single.html": """\
{{ define "main" }}
<article>
<h1>{{ .Title }}</h1>
{{- if not .Date.IsZero }}
<time datetime="{{ .Date.Format "2006-01-02T15:04:05Z07:00" }}">{{ .Date.Format "2006-01-02 15:04" }}</time>
{{- end }}
<p>{{ range .GetTerms "categories" }}<a href="{{ .RelPermalink }}">{{ .LinkTitle }}</a> {{ end }}
{{- range .GetTerms "authors" }}· <a href="{{ .RelPermalink }}">{{ .LinkTitle }}</a>{{ end }}</p>
{{ .Content }}
</article>
{{ end }}
""",
    "_default/list.html": """\
{{ define "main" }}
<h1>{{ .Title }}</h1>
<ul>
{{- range .Pages }}
<li><a href="{{ .RelPermalink }}">{{ .LinkTitle }}</a></li>
{{- end }}
</ul>
{{ end }}
""",
    "_default/rss.xml": """\
{{- $pages := .Pages -}}
{{- if .IsHome }}{{ $pages = site.RegularPages }}{{ end -}}
{{- $limit := site.Config.Services.RSS.Limit -}}
{{- if ge $limit 1 }}{{ $pages = $pages | first $limit }}{{ end -}}
{{- printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\"?>" | safeHTML }}
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{{ .Title }}</title>
<link>{{ .Permalink }}</link>
<description>{{ .Title }} · {{ site.Title }}</description>
<language>{{ site.LanguageCode }}</language>
{{- with .OutputFormats.Get "RSS" }}
<atom:link href="{{ .Permalink }}" rel="self" type="application/rss+xml"/>
{{- end }}
{{- range $pages }}
<item>
<title>{{ .Title }}</title>
<link>{{ .Permalink }}</link>
<guid>{{ .Permalink }}</guid>
{{- if not .Date.IsZero }}
<pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
{{- end }}
{{- range .Params.categories }}
<category>{{ . }}</category>
{{- end }}
<description>{{ .Content | html }}</description>
</item>
{{- end }}
</channel>
</rss>
""",
}

CST = timezone(timedelta(hours=8))  # [site] timezone of the generated config: zone-less dates are read in it


def _flatten(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _flatten(item)]
    name = str(value).strip()
    return [name] if name else []


def _hugo_date(value) -> str | None:
    """ISO 8601 with offset, or None for a date nobody can read ('Invalid Date')."""
    from email.utils import parsedate_to_datetime

    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=CST)
    elif isinstance(value, str):
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=CST)
    else:
        return None
    return moment.isoformat()


def layout_hugo(root: Path, posts_dir: Path, files: list[Path], content_format: str) -> tuple[Path, dict]:
    """Write root/hugo: config, layouts, and every post with Hugo-readable front matter (not timed).
    Returns (site dir, facts incl. the expected posts per taxonomy term)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    site = root / "hugo"
    if site.exists():
        shutil.rmtree(site)
    (site / "content" / "posts").mkdir(parents=True)
    (site / "hugo.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    for rel, text in HUGO_LAYOUTS.items():
        path = site / "layouts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    facts = {"posts": 0, "dates_dropped": 0, "unreadable_front_matter": 0, "content_format": content_format}
    expected: dict[str, dict[str, int]] = {"categories": {}, "tags": {}, "authors": {}}
    for src in files:
        text = src.read_text(encoding="utf-8")
        end = text.index("\n---\n", 4)
        try:
            meta = yaml.load(text[4:end], Loader=loader) or {}
        except yaml.YAMLError:
            facts["unreadable_front_matter"] += 1
            continue
        body = text[end + 5 :]
        front: dict = {"title": str(meta.get("title") or src.stem)}
        date = _hugo_date(meta.get("date"))
        if date:
            front["date"] = date
        else:
            facts["dates_dropped"] += 1
        terms = {
            "categories": list(dict.fromkeys(_flatten(meta.get("categories")))),  # [group, source, feed] → three terms
            "tags": list(dict.fromkeys(_flatten(meta.get("tags")))),
            "authors": _flatten(meta.get("author"))[:1],
        }
        for taxonomy, names in terms.items():
            if names:
                front[taxonomy] = names
            for name in names:
                expected[taxonomy][name] = expected[taxonomy].get(name, 0) + 1
        dest = site / "content" / "posts" / src.relative_to(posts_dir)
        dest = dest.with_suffix("." + content_format)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no quoting surprises in titles
        dest.write_text("---\n" + json.dumps(front, ensure_ascii=False) + "\n---\n" + body, encoding="utf-8")
        facts["posts"] += 1
    facts["expected_terms"] = {k: len(v) for k, v in expected.items()}
    return site, {**facts, "expected": expected}


def hugo_version() -> str:
    try:
        out = subprocess.run(["hugo", "version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"v(\d+\.\d+\.\d+)", out)
    return m.group(1) if m else out.strip()[:60]


ITEM = re.compile(r"<item>")
CHANNEL_TITLE = re.compile(r"<channel>\s*<title>(.*?)</title>", re.S)


def check_hugo_output(public: Path, posts: int, expected: dict[str, dict[str, int]]) -> dict:
    """Not timed: a page per post, and an RSS feed per taxonomy term listing all of its posts."""
    import html

    files = [p for p in public.rglob("*") if p.is_file()]
    feeds = [p for p in files if p.name == "index.xml"]
    post_root = public / "posts"
    post_pages = [p for p in post_root.rglob("index.html") if p.parent != post_root]
    out = {"files": len(files), "rss_feeds": len(feeds), "post_pages": len(post_pages), "posts_expected": posts,
           "output_mb": round(sum(p.stat().st_size for p in files) / MB, 1)}
    home = public / "index.xml"
    out["home_feed_items"] = len(ITEM.findall(home.read_text(encoding="utf-8"))) if home.exists() else 0
    problems: list[str] = []
    term_feeds = 0
    for taxonomy, want in expected.items():
        got: dict[str, int] = {}
        folder = public / taxonomy
        for feed in folder.glob("*/index.xml") if folder.is_dir() else []:
            text = feed.read_text(encoding="utf-8")
            m = CHANNEL_TITLE.search(text)
            name = html.unescape(m.group(1)) if m else feed.parent.name
            got[name] = got.get(name, 0) + len(ITEM.findall(text))
            term_feeds += 1
        for name, count in want.items():
            if got.get(name) != count:
                problems.append(f"{taxonomy}/{name}: {got.get(name, 'no feed')} items, expected {count}")
        for name in got.keys() - want.keys():
            problems.append(f"{taxonomy}/{name}: unexpected feed")
    out["term_feeds"] = term_feeds
    out["terms_expected"] = sum(len(v) for v in expected.values())
    if out["post_pages"] != posts:
        problems.insert(0, f"{out['post_pages']} post pages for {posts} posts")
    if out["home_feed_items"] != posts:
        problems.insert(0, f"home feed has {out['home_feed_items']} items for {posts} posts")
    out["problems"] = problems[:20]
    out["complete"] = not problems
    return out


def hugo_build(root: Path, site: Path, name: str) -> dict:
    """One cold `hugo --quiet` into folders of its own (public-NAME, its own cache): nothing is deleted before it."""
    cmd = ["hugo", "--quiet", "--cacheDir", str(root / f".hugo-cache-{name}"), "--destination", f"public-{name}"]
    return run_measured(cmd, site, root / "logs" / f"hugo-{name}")


# --------------------------------------------------------------------------
# 3. serving
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_http(url: str, proc: subprocess.Popen, timeout: float, watch: tuple[Path, str, dict] | None = None) -> float:
    """Poll until url answers; `watch` = (log file, marker, out): out['marker_s'] = when the marker first appeared."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if watch and "marker_s" not in watch[2]:
            try:
                if watch[1] in watch[0].read_text(errors="replace"):
                    watch[2]["marker_s"] = round(time.perf_counter() - t0, 2)
            except OSError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            status, _, _ = http_get(url, timeout=2)
            if status < 500:
                return time.perf_counter() - t0
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return round(float(m.group(1)) * UNITS[m.group(2)], 3) if m else float("nan")


def run_wrk(url: str, headers: list[str], duration: str = "10s") -> dict:
    cmd = ["wrk", "-t2", "-c50", f"-d{duration}", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    STARTED.append(proc)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_tree(proc, grace=1)
    res = {"cmd": " ".join(cmd), "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else float("nan")
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx_3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1).strip() if m else ""
    return res


def pick_feed(tree: Path) -> tuple[str, int]:
    """A category feed of ~20-50 KB (closest to 35 KB) from the built tree: (site path, bytes)."""
    candidates = []
    for path in (tree / "categories").rglob("*"):
        if path.is_file() and re.fullmatch(r"atom\.xml|rss\.xml|feed\.json", path.name):
            size = path.stat().st_size
            rank = (0 if path.name == "atom.xml" else 1, abs(size - 35_000))
            in_range = 20_000 <= size <= 50_000
            candidates.append((not in_range, rank, "/" + path.relative_to(tree).as_posix(), size))
    if not candidates:
        raise RuntimeError("no category feed in the built tree")
    candidates.sort()
    _, _, site_path, size = candidates[0]
    return site_path, size


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        charset utf-8;
        etag on;
        add_header Cache-Control "public, max-age=300" always;
        add_header Vary "Accept-Encoding" always;
        location ~ /atom(-\\d+)?\\.xml$ {{
            types {{ }} default_type "application/atom+xml; charset=utf-8";
            add_header Cache-Control "public, max-age=300" always;
            add_header Vary "Accept-Encoding" always;
            add_header Access-Control-Allow-Origin "*" always;
        }}
        location ~ /rss(-\\d+)?\\.xml$ {{
            types {{ }} default_type "application/rss+xml; charset=utf-8";
            add_header Cache-Control "public, max-age=300" always;
            add_header Vary "Accept-Encoding" always;
            add_header Access-Control-Allow-Origin "*" always;
        }}
        location ~ /feed(-\\d+)?\\.json$ {{
            types {{ }} default_type "application/feed+json; charset=utf-8";
            add_header Cache-Control "public, max-age=300" always;
            add_header Vary "Accept-Encoding" always;
            add_header Access-Control-Allow-Origin "*" always;
        }}
    }}
}}
"""


SERVE_ROUNDS = 3


def _best_of(runs: list[dict]) -> dict:
    """The least disturbed of several wrk runs: the most requests/s, with the lowest p50 and p99 of any of them."""
    best = dict(max(runs, key=lambda r: r["rps"]))
    best["p50_ms"] = min(r["p50_ms"] for r in runs)
    best["p99_ms"] = min(r["p99_ms"] for r in runs)
    best["rounds"] = [{k: r[k] for k in ("rps", "p50_ms", "p99_ms")} for r in runs]
    return best


def serve_bench(root: Path, cfg: Path, tree: Path, results: dict) -> None:
    site_path, size = pick_feed(tree)
    quoted = urllib.parse.quote(site_path)
    file_bytes = (tree / site_path.lstrip("/")).read_bytes()
    results["serve"] = serve = {"feed_path": site_path, "feed_bytes": size, "rounds": SERVE_ROUNDS}
    port = free_port()
    log = root / "logs"
    t0 = time.perf_counter()
    with open(log / "serve.out", "wb") as out, open(log / "serve.err", "wb") as err:
        proc = subprocess.Popen([FEEDS, "serve", "--config", str(cfg), "--port", str(port)], cwd=root, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    STARTED.append(proc)
    sampler = TreeSampler(proc.pid, interval=0.2)
    sampler.start()
    # nginx serves the same published tree through the same link, at the
    # same time: the two are measured in alternation, each on its best round
    ntmp = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    os.chmod(ntmp, 0o755)
    nport = free_port()
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = ntmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=ntmp, port=nport, root=(root / "public"), user=user))
    nproc = None
    try:
        base = f"http://127.0.0.1:{port}"
        marker: dict = {}
        wait_http(base + "/", proc, timeout=1800, watch=(log / "serve.err", "serving ", marker))
        serve["startup_s"] = round(time.perf_counter() - t0, 2)
        # `feeds serve` prints "serving …" after its own check pass, before granian's worker builds the site
        serve["startup_check_pass_s"] = marker.get("marker_s")
        serve["startup_peak_sum_of_process_peaks_mb"] = round(sum(sampler.hwm.values()) / 1024, 1)
        sampler.stop()
        status, headers, body = http_get(base + quoted)
        serve["feed_status"] = status
        serve["same_bytes_as_built_file"] = body == file_bytes
        etag = headers.get("ETag") or headers.get("etag")
        serve["etag"] = etag
        status304, _, _ = http_get(base + quoted, {"If-None-Match": etag or '"x"'})
        serve["if_none_match_status"] = status304
        serve["rss_before_wrk"] = _mb(tree_rss_kb(proc.pid))
        nproc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(ntmp), "-e", str(ntmp / "error.log")], stdout=subprocess.DEVNULL, stderr=open(ntmp / "stderr.log", "wb"), stdin=subprocess.DEVNULL)
        STARTED.append(nproc)
        nbase = f"http://127.0.0.1:{nport}"
        wait_http(nbase + quoted, nproc, timeout=30)
        status, _, nbody = http_get(nbase + quoted)
        serve["nginx"] = {"worker_processes": 1, "status": status, "same_bytes": nbody == file_bytes}
        run_wrk(base + quoted, [], "2s")  # warm-ups, not recorded
        run_wrk(nbase + quoted, [], "2s")
        runs: dict[str, list[dict]] = {"feeds_200": [], "nginx_200": [], "feeds_304": []}
        for _ in range(SERVE_ROUNDS):
            runs["feeds_200"].append(run_wrk(base + quoted, []))
            runs["nginx_200"].append(run_wrk(nbase + quoted, []))
            runs["feeds_304"].append(run_wrk(base + quoted, [f"If-None-Match: {etag}"]))
        for key, measured in runs.items():
            serve[key] = _best_of(measured)
        serve["nginx"]["rss_after_wrk"] = _mb(tree_rss_kb(nproc.pid))
        kill_tree(nproc, grace=5, sig=signal.SIGQUIT)
        nproc = None
        rss_tree = tree_rss_kb(proc.pid)
        serve["rss_after_wrk"] = _mb(rss_tree)
        # the root is the builder (`feeds serve` itself); the rest is granian
        serve["largest_server_process_mb"] = round(max((kb for pid, kb in rss_tree["per_process_kb"].items() if pid != proc.pid), default=0) / 1024, 1)
        serve["new_post"] = new_post_latency(root, base)
        serve["server_alive_after"] = proc.poll() is None
    finally:
        sampler.stop()
        if nproc is not None:
            kill_tree(nproc, grace=5, sig=signal.SIGQUIT)
        kill_tree(proc)
        shutil.rmtree(ntmp, ignore_errors=True)
        serve["serve_stderr_tail"] = (log / "serve.err").read_text(errors="replace")[-1500:]
    a, c = serve["feeds_200"], serve["nginx_200"]
    serve["ratio_rps_feeds_over_nginx"] = round(a["rps"] / c["rps"], 3) if c["rps"] else None
    serve["ratio_p99_feeds_over_nginx"] = round(a["p99_ms"] / c["p99_ms"], 2) if c["p99_ms"] else None
    serve["ratio_rps_304_over_nginx"] = round(serve["feeds_304"]["rps"] / c["rps"], 3) if c["rps"] else None


NEW_POST = """---
title: Live post {stamp}
categories:
 - bench-live
 - arrivals
 - today
author: bench
date: {date}
---
<p>A post written while the server runs ({stamp}).</p>
"""


def new_post_latency(root: Path, base: str, timeout: float = 120) -> dict:
    """Seconds from writing a new post to the live server listing it in /atom.xml, then from deleting it to its removal."""
    stamp = f"{time.time_ns():x}"
    path = root / "posts" / "bench-live" / f"live-{stamp}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = f"Live post {stamp}".encode()

    def wait(present: bool) -> float | None:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            status, _, body = http_get(base + "/atom.xml")
            if status == 200 and (marker in body) == present:
                return round(time.perf_counter() - t0, 2)
            time.sleep(0.02)
        return None

    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    path.write_text(NEW_POST.format(stamp=stamp, date=date), encoding="utf-8")
    shown = wait(True)
    shown_s = None if shown is None else round(time.perf_counter() - t0, 2)
    path.unlink()
    t1 = time.perf_counter()
    gone = wait(False)
    gone_s = None if gone is None else round(time.perf_counter() - t1, 2)
    try:
        path.parent.rmdir()
    except OSError:
        pass
    return {"served_s": shown_s, "removed_s": gone_s}


def _mb(tree: dict) -> dict:
    return {"rss_sum_mb": round(tree["sum_kb"] / 1024, 1), "pss_sum_mb": round(tree["pss_sum_kb"] / 1024, 1),
            "per_process_mb": [round(v / 1024, 1) for v in tree["per_process_kb"].values()]}


# --------------------------------------------------------------------------
# 4. report
# --------------------------------------------------------------------------


def rss_limit_mb(posts: int) -> int:
    return 500 if posts <= 10000 else 1024  # the issue: 500 MB at 10k, under 1 GB at 100k


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def report(res: dict) -> str:
    n = res["params"]["posts"]
    cores = res["params"]["cores"]
    rows = ["| measurement | time / rate | p50 / p99 | RSS MB | target | result |", "|---|---|---|---|---|---|"]
    g = res["corpus"]
    copies = f" ({g['posts'] // g['copies']} generated, each copied {g['copies']}×)" if g.get("copies", 1) > 1 else ""
    rows.append(f"| corpus | {g['posts']} posts{copies}, {g['body_bytes'] / MB:.1f} MB bodies, {g['leaves']} leaf feeds (largest {g['leaf_sizes'][0]}, smallest {g['leaf_sizes'][-1]}) | | | info | |")
    b = res["bleach"]
    limit = res["cold_limit_s"]
    rows.append(f"| bleach alone, 1 process, reused Cleaner{_fastest_of(res, 'bleach')} | {b['wall_s']:.2f} s (cpu {b['cpu_s']:.1f} s; {b['mb_per_s']:.2f} MB/s) | | | info | |")
    rows.append(f"| implied cold limit = 1.25 × bleach ÷ {cores} cores | {limit:.2f} s | | | info | |")
    probes = res.get("probe_ms_per_body") or {}
    if probes:
        rows.append(f"| machine speed: bleach alone on the same {PROBE_BODIES} bodies, ms per body, through the run | {_probe_text(probes)} | | | info | |")
    t = res["targets"]
    for key, label, target in (
        ("cold", f"cold build (empty cache, no output){_fastest_of(res, 'cold')}", f"≤ {limit:.2f} s"),
        # the issue sets the rebuild times for 10,000 posts only
        ("nochange", f"no-change rebuild{_fastest_of(res, 'nochange')}", "< 1 s" + ("" if n == 10000 else f" (target is for 10k; N={n})")),
        ("onepost", f"one-post-changed rebuild{_fastest_of(res, 'onepost')}", "< 1.5 s" + ("" if n == 10000 else f" (target is for 10k; N={n})")),
    ):
        r = res["builds"][key]
        mem = (f"max proc {r['max_rss_single_process_mb']:.0f}; sum of peaks {r['sum_of_process_peaks_mb']:.0f}; "
               f"concurrent {r['sampled_concurrent_rss_mb']:.0f} (PSS {r['sampled_concurrent_pss_mb']:.0f}); {r['processes']} procs")
        sm = r.get("summary") or {}
        work = f"; {sm['processed']} processed, {sm['written']} files written" if sm else "; no summary line"
        rows.append(f"| {label} | {r['wall_s']:.2f} s (rc {r['rc']}, cpu {r['cpu_user_s'] + r['cpu_sys_s']:.1f} s{work}) | | {mem} | {target} | {verdict(t[key])} |")
    b_round, c_round = res.get("fastest", {}).get("bleach", 1), res.get("fastest", {}).get("cold", 1)
    drift = _probe_drift(probes, (f"before bleach alone {b_round}", f"after bleach alone {b_round}"),
                         (f"after bleach alone {c_round}", f"after the cold build {c_round}"))
    if drift:
        # the verdict above stays on the raw times; this says what the machine's drift did to it
        cold_s = res["builds"]["cold"]["wall_s"]
        rows.append(f"| cold build ÷ the limit, bleach alone scaled by the probes around each (the machine ran {drift:.2f}× as long per body "
                    f"during the cold build as during bleach alone) | {cold_s / limit:.2f} raw, {cold_s / (limit * drift):.2f} scaled | | | info | |")
    every = res.get("bleach_every_core")
    if every:
        cold_s = res["builds"]["cold"]["wall_s"]
        rows.append(f"| bleach alone on all {every['processes']} cores at once (its bodies dealt out to {every['processes']} forked processes){_fastest_of(res, 'bleach_every_core')} "
                    f"| {every['wall_s']:.2f} s (one process ÷ {cores}: {b['wall_s'] / cores:.2f} s) | | | info | |")
        rows.append(f"| cold build ÷ (1.25 × bleach on all cores at once): the target measured against what the cores did together | {cold_s / (1.25 * every['wall_s']):.2f} | | | info | |")
    for step, what in (("cold_nh3", '`[sanitize] engine = "nh3"` (own cache and output)'),
                       ("cold_html5lib", '`[sanitize] engine = "bleach-html5lib"` (bleach\'s own pure-Python parser instead of lexbor; own cache and output)')):
        if step not in res["builds"]:
            continue
        r = res["builds"][step]
        sm = r.get("summary") or {}
        work = f"; {sm['processed']} processed, {sm['written']} files written" if sm else "; no summary line"
        mem = (f"max proc {r['max_rss_single_process_mb']:.0f}; sum of peaks {r['sum_of_process_peaks_mb']:.0f}; "
               f"concurrent {r['sampled_concurrent_rss_mb']:.0f} (PSS {r['sampled_concurrent_pss_mb']:.0f}); {r['processes']} procs")
        limit = res.get("cold_limit_s")
        versus = f"; ÷ the limit: {r['wall_s'] / limit:.2f}" if limit else ""
        rows.append(f"| cold build, {what}{_fastest_of(res, step)} "
                    f"| {r['wall_s']:.2f} s (rc {r['rc']}, cpu {r['cpu_user_s'] + r['cpu_sys_s']:.1f} s{work}{versus}) | | {mem} | info | |")
    rows.extend(hugo_rows(res, n))
    if res.get("package_changed_during_builds"):
        rows.append("| WARNING | the feeds package's source changed between builds (cache keyed on it was invalidated): rebuild numbers are not valid | | | | |")
    cold = res["builds"]["cold"]
    note = "" if n == 10000 else f" (target is for 10k; N={n})"
    limit = rss_limit_mb(n)
    pss = res.get("cold_pss_mb_highest", cold["sampled_concurrent_pss_mb"])
    rows.append(f"| cold build peak memory, highest simultaneous PSS sum, highest of the rounds (sum of per-process RSS peaks: {cold['sum_of_process_peaks_mb']:.0f}) | | | {pss:.0f} | < {limit} MB{note if n < 10000 else ''} | {verdict(t['rss'])} |")
    ref = res.get("reference")
    if ref:
        ratio = cold["wall_s"] / ref["cold_wall_s"]
        rows.append(f"| cold build ÷ the {ref['posts']:,}-post run's ({ref['cold_wall_s']:.1f} s, {ref['how']}; {ref['file']}) | {ratio:.2f}× for {n / ref['posts']:.0f}× the posts | | | ≤ 11× | {verdict(ratio <= 11) if n == 10 * ref['posts'] else 'info'} |")
        if ref.get("bleach_wall_s") and "bleach" in res:
            # two runs an hour apart on a shared machine differ in speed: bleach
            # alone, timed in both, tells how much (the same work per post)
            speed = res["bleach"]["wall_s"] / n / (ref["bleach_wall_s"] / ref["posts"])
            rows.append(f"| the same, per post of bleach alone in each run (this run's bleach took {speed:.2f}× the reference's per post) "
                        f"| {ratio / speed:.2f}× | | | info | |")
    if "naive" in res:
        r = res["naive"]
        rows.append(f"| naive script (frontmatter+bleach+feedgen, 1 proc, Atom per leaf) | {r['wall_s']:.2f} s (rc {r['rc']}); cold build ÷ naive = {cold['wall_s'] / r['wall_s']:.2f} | | max proc {r['max_rss_single_process_mb']:.0f} | info | |")
    s = res.get("serve")
    if s and "feeds_200" in s and "nginx_200" in s:
        rows.append(f"| feeds serve start-up (until / answers; 'serving' line after {s.get('startup_check_pass_s')} s) | {s['startup_s']:.1f} s | | sum of peaks {s['startup_peak_sum_of_process_peaks_mb']:.0f} | info | |")
        rounds = s.get("rounds", 1)
        for key, label in (("feeds_200", f"(a) feeds serve 200 {s['feed_path']} ({s['feed_bytes'] / 1024:.0f} KB)"),
                           ("feeds_304", "(b) feeds serve 304 (If-None-Match)"),
                           ("nginx_200", "(c) nginx 200, same file, worker_processes 1")):
            w = s[key]
            bad = f", {w['non_2xx_3xx']} non-2xx/3xx" if w["non_2xx_3xx"] else ""
            err = f", socket errors {w['socket_errors']}" if w["socket_errors"] else ""
            each = w.get("rounds")
            if each and len(each) > 1:
                listed = "; ".join(f"{r['rps']:,.0f} req/s {r['p50_ms']:.2f}/{r['p99_ms']:.2f} ms" for r in each)
                label += f", best of {rounds} alternated rounds ({listed})"
            rows.append(f"| {label} | {w['rps']:,.0f} req/s{bad}{err} | {w['p50_ms']:.2f} / {w['p99_ms']:.2f} ms | | info | |")
        rows.append(f"| feeds ÷ nginx, 200 req/s | {s['ratio_rps_feeds_over_nginx']:.2f} | | | ≥ 0.5 | {verdict(s['ratio_rps_feeds_over_nginx'] >= 0.5)} |")
        rows.append(f"| feeds ÷ nginx, p99 latency | | {s['ratio_p99_feeds_over_nginx']:.2f}× | | ≤ 2× | {verdict(s['ratio_p99_feeds_over_nginx'] <= 2)} |")
        rows.append(f"| feeds 304 ÷ feeds 200 req/s | {s['feeds_304']['rps'] / s['feeds_200']['rps']:.2f} (304 ÷ nginx 200: {s['ratio_rps_304_over_nginx']:.2f}) | | | > 1 | {verdict(s['feeds_304']['rps'] > s['feeds_200']['rps'])} |")
        ra = s["rss_after_wrk"]
        rows.append(f"| feeds serve RSS after wrk (builder + granian + workers) | | | {ra['rss_sum_mb']:.0f} (PSS {ra['pss_sum_mb']:.0f}; per process {', '.join(f'{v:.0f}' for v in ra['per_process_mb'])}) | info | |")
        live = s.get("new_post")
        if live:
            reload = RELOAD_SECONDS
            ok = live["served_s"] is not None and live["served_s"] <= reload + 1
            rows.append(f"| new post written → listed in /atom.xml by the running server (deleted → gone: {live['removed_s']} s) | {live['served_s']} s | | | ≤ reload_seconds + 1 = {reload + 1} s | {verdict(ok)} |")
        if "largest_server_process_mb" in s:
            rows.append(f"| largest serving process (granian main or worker) | | | {s['largest_server_process_mb']:.0f} | < 300 MB | {verdict(s['largest_server_process_mb'] < 300)} |")
    elif s:
        rows.append(f"| serve | failed: {s.get('error', '?')} | | | | |")
    return "\n".join(rows)


def _probe_text(probes: dict) -> str:
    """'before bleach alone, after bleach alone, …: round 1 4.09, 4.26, …; round 2 …' (labels end in their round)."""
    steps: list[str] = []
    by_round: dict[str, list[str]] = {}
    for label, ms in probes.items():
        step, _, k = label.rpartition(" ")
        if not k.isdigit():
            return "; ".join(f"{label} {ms:.2f}" for label, ms in probes.items())
        if step not in steps:
            steps.append(step)
        by_round.setdefault(k, []).append(f"{ms:.2f}")
    return ", ".join(steps) + ": " + "; ".join(f"round {k} {', '.join(values)}" for k, values in by_round.items())


def _fastest_of(res: dict, step: str) -> str:
    """', fastest of 3 rounds (37.12, 35.20, 36.04 s)' for a step timed in every round; '' for one round."""
    walls = res.get("rounds", {}).get(step) or []
    if len(walls) < 2:
        return ""
    return f", fastest of {len(walls)} rounds ({', '.join(f'{w:.2f}' for w in walls)} s)"


def _probe_drift(probes: dict, first: tuple[str, str], second: tuple[str, str]) -> float | None:
    """How much slower the machine ran around the second step than around the first (probe means)."""
    if not all(label in probes for label in first + second):
        return None
    return (probes[second[0]] + probes[second[1]]) / (probes[first[0]] + probes[first[1]])


def hugo_rows(res: dict, n: int) -> list[str]:
    h = res.get("hugo") or {}
    if "skipped" in h:
        return [f"| Hugo full build | skipped: {h['skipped']} | | | | |"]
    if "error" in h:
        return [f"| Hugo full build | failed to run: {h['error']} | | | | |"]
    if "build" not in h:
        return []
    r = h["build"]
    rows = []
    o = h.get("output")
    if r["rc"] != 0 or o is None:
        tail = " ".join(h.get("stderr_tail", "").split())[-300:]
        rows.append(f"| Hugo {h['version']} full build | FAILED rc {r['rc']}: {tail} | | | | |")
    else:
        check = "page per post and every term feed complete" if o["complete"] else "INCOMPLETE: " + "; ".join(o["problems"][:3])
        rows.append(f"| Hugo {h['version']} full build (`hugo --quiet`, cold; .{h['layout']['content_format']} content){_fastest_of(res, 'hugo')} | {r['wall_s']:.2f} s "
                    f"(rc 0, cpu {r['cpu_user_s'] + r['cpu_sys_s']:.1f} s; {o['files']} files, {o['output_mb']} MB, {o['rss_feeds']} RSS feeds "
                    f"of which {o['term_feeds']} term feeds; {o['post_pages']} post pages; {check}) | | max proc {r['max_rss_single_process_mb']:.0f} | info | |")
    t = res["targets"]
    q = res.get("ratios_vs_hugo") or {}
    note = "" if n == 10000 else f" (target is for 10k; N={n})"
    bleach = f"{q['bleach_cold']:.2f}" if "bleach_cold" in q else "n/a"
    rows.append(f"| bleach cold ÷ Hugo | {bleach} | | | ≤ 2{note} | {verdict(t.get('cold_vs_hugo'))} |")
    if "cold_nh3" in res["builds"]:
        nh3 = f"{q['nh3_cold']:.2f}" if "nh3_cold" in q else "n/a"
        rows.append(f"| nh3 cold ÷ Hugo | {nh3} | | | < 1{note} | {verdict(t.get('nh3_vs_hugo'))} |")
    else:
        rows.append("| nh3 cold ÷ Hugo | skipped: --skip-nh3 | | | | |")
    return rows


def reference_of(file: str, earlier: dict, rounds: int) -> dict:
    """What a run is compared with for scaling: the earlier run's cold build and bleach alone.

    Both runs are read alike: a run of as many rounds as the reference is
    compared with its fastest; a run of fewer (a 100,000-post round takes
    a quarter of an hour) with the median of its rounds, because the
    fastest of three is faster than a typical single run.
    """
    import statistics

    walls = earlier.get("rounds", {})
    cold, bleach = walls.get("cold") or [earlier["builds"]["cold"]["wall_s"]], walls.get("bleach") or [earlier.get("bleach", {}).get("wall_s")]
    if rounds >= len(cold):
        how, pick = (f"fastest of {len(cold)} rounds" if len(cold) > 1 else "one round"), min
    else:
        how, pick = f"median of {len(cold)} rounds", statistics.median
    return {"file": file, "posts": earlier["params"]["posts"], "cold_wall_s": pick(cold),
            "bleach_wall_s": pick(bleach) if None not in bleach else None, "how": how}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20211116)
    ap.add_argument("--copies", type=int, default=1, help="generate posts/COPIES posts and copy each COPIES times (fast large corpora)")
    ap.add_argument("--workers", type=int, default=0, help="[build] workers in the generated config (0 = one per core)")
    ap.add_argument("--skip-serve", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-nh3", action="store_true", help="no cold build with [sanitize] engine = \"nh3\"")
    ap.add_argument("--skip-html5lib", action="store_true", help="no cold build with [sanitize] engine = \"bleach-html5lib\"")
    ap.add_argument("--skip-hugo", action="store_true", help="no Hugo full build of the same posts")
    ap.add_argument("--hugo-content", choices=("md", "html"), default="md",
                    help="Hugo's copy of the posts: .md (goldmark, unsafe HTML passes through; default) or .html (used as is)")
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (corpus, config, output, logs)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    ap.add_argument("--rounds", type=int, default=3, help="time bleach alone and each cold build (feeds, feeds with nh3, Hugo) this many times, interleaved, and judge each on its fastest (default 3)")
    ap.add_argument("--reference", metavar="FILE", help="the --json of a run with 10× fewer posts: judges the cold build's scaling (≤ 11×)")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    earlier_run: Path | None = None
    if args.keep:
        root = Path(args.keep).resolve()
        if root.exists():
            # removed only after the timed work: on ext4 without a journal
            # (this project's machines), making a file within minutes of
            # deleting many makes the kernel skip each recently freed inode
            # in turn, and creates went from 40 µs to 300-800 µs
            earlier_run = root.with_name(f"{root.name}.earlier-{os.getpid()}")
            root.rename(earlier_run)
        root.mkdir(parents=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="feeds-bench-"))
    os.chmod(root, 0o755)  # nginx workers must read the tree
    (root / "logs").mkdir()
    res: dict = {"params": {"posts": args.posts, "seed": args.seed, "workers": args.workers, "cores": cores, "root": str(root),
                            "feeds": FEEDS, "python": sys.version.split()[0]}}
    if args.reference:
        earlier = json.loads(Path(args.reference).read_text(encoding="utf-8"))
        res["reference"] = reference_of(args.reference, earlier, max(1, args.rounds))
    try:
        print(f"# generating {args.posts} posts into {root} (seed {args.seed}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        facts = generate(root, args.posts // args.copies, args.seed)
        files = [Path(p) for p in facts.pop("files")]
        if args.copies > 1:
            files = replicate(files, args.copies, facts)
        cfg = write_config(root, args.workers)
        res["corpus"] = facts
        res["generation_s"] = round(time.perf_counter() - t0, 2)
        # posts written in the last 2 s are "racy" for feeds' stat index: let them age (not timed)
        time.sleep(2.5)

        # bleach alone and every cold build (feeds, feeds with nh3, Hugo) are
        # timed once per round, interleaved, and each is judged on its fastest
        # round: the fastest of several runs is the one least disturbed by this
        # machine's slow spells, and every side of a comparison gets the same
        # number of tries. Every round builds into folders of its own: nothing
        # is deleted between timed steps (see README: deleting many files
        # slows making files for minutes on this project's machines).
        rounds = max(1, args.rounds)
        bodies = [split_body(p.read_text(encoding="utf-8")) for p in files]
        res["loadavg_before_bleach"] = os.getloadavg()
        probe = SpeedProbe(bodies)
        res["probe_ms_per_body"] = probe.taken
        build_cmd = [FEEDS, "build", "--config", str(cfg)]
        # as installed by pip, the package comes with its bytecode; an editable
        # install under PYTHONDONTWRITEBYTECODE (set on some CI machines) would
        # otherwise compile every module on every build (about 0.1 s)
        res["params"]["bytecode"] = compile_package()
        res["params"]["rounds"] = rounds
        builds = res["builds"] = {}
        timed: dict[str, list[dict]] = {"bleach": [], "bleach_every_core": [], "cold": [], "cold_nh3": [], "cold_html5lib": [], "hugo": [], "nochange": [], "onepost": []}
        fingerprints = res["package_fingerprints"] = [package_fingerprint()]
        res["loadavg"] = {}
        hugo_site = None
        if args.skip_hugo:
            res["hugo"] = {"skipped": "--skip-hugo"}
        elif not shutil.which("hugo"):
            res["hugo"] = {"skipped": f"hugo not on PATH ({HUGO_INSTALL_HINT})"}
        else:
            print("# laying out Hugo's copy of the posts (not timed) ...", file=sys.stderr, flush=True)
            try:
                hugo_site, facts = layout_hugo(root, root / "posts", files, args.hugo_content)
                hugo_expected = facts.pop("expected")
                res["hugo"] = {"version": hugo_version(), "layout": facts}
            except Exception as exc:  # report, do not judge
                res["hugo"] = {"error": f"{type(exc).__name__}: {exc}"}
        # the other engines' cold builds: (engine, name of their config, cache, output and step)
        other_engines = [(engine, name) for engine, name, skip in (("nh3", "nh3", args.skip_nh3), ("bleach-html5lib", "html5lib", args.skip_html5lib)) if not skip]
        for k in range(1, rounds + 1):
            last = k == rounds
            print(f"# round {k} of {rounds}: bleach alone ...", file=sys.stderr, flush=True)
            probe(f"before bleach alone {k}")
            timed["bleach"].append(bleach_alone(bodies))
            probe(f"after bleach alone {k}")
            if cores > 1:
                timed["bleach_every_core"].append(bleach_on_every_core(bodies, cores))
            # the last round builds with the generated config itself: the rebuilds and the server below start from its output
            round_cfg = cfg if last else write_engine_config(cfg, "bleach", f"r{k}")
            print(f"# round {k}: cold build ...", file=sys.stderr, flush=True)
            res["loadavg"][f"before_cold {k}"] = os.getloadavg()
            timed["cold"].append(run_measured([FEEDS, "build", "--config", str(round_cfg)], root, root / "logs" / f"cold-{k}"))
            probe(f"after the cold build {k}")
            fingerprints.append(package_fingerprint())
            for engine, name in other_engines:
                engine_cfg = write_engine_config(cfg, engine, name if last else f"{name}-r{k}")
                print(f"# round {k}: cold build, {engine} engine ...", file=sys.stderr, flush=True)
                res["loadavg"][f"before_cold_{name} {k}"] = os.getloadavg()
                timed[f"cold_{name}"].append(run_measured([FEEDS, "build", "--config", str(engine_cfg)], root, root / "logs" / f"cold-{name}-{k}"))
                probe(f"after the {engine} cold build {k}")
                fingerprints.append(package_fingerprint())
            if hugo_site is not None:
                print(f"# round {k}: Hugo full build ...", file=sys.stderr, flush=True)
                try:
                    timed["hugo"].append(hugo_build(root, hugo_site, f"r{k}"))
                except Exception as exc:  # report, do not judge; no more Hugo rounds
                    res["hugo"] = {"error": f"{type(exc).__name__}: {exc}"}
                    hugo_site = None
                    timed["hugo"].clear()
                probe(f"after Hugo {k}")
        del bodies
        res["fastest"] = {}

        def fastest(step: str) -> dict:
            runs = timed[step]
            best = min(range(len(runs)), key=lambda i: (runs[i].get("rc", 0) not in (0, 1), runs[i]["wall_s"]))
            res["fastest"][step] = best + 1
            return runs[best]

        res["bleach"] = fastest("bleach")
        res["cold_limit_s"] = round(1.25 * res["bleach"]["wall_s"] / cores, 3)
        builds["cold"] = fastest("cold")
        # memory is judged on the worst round, not on the fastest one
        res["cold_pss_mb_highest"] = max(r["sampled_concurrent_pss_mb"] for r in timed["cold"])
        for step in ("cold_nh3", "cold_html5lib"):
            if timed[step]:
                builds[step] = fastest(step)
        if timed["bleach_every_core"]:
            res["bleach_every_core"] = fastest("bleach_every_core")
        if timed["hugo"]:
            res["hugo"]["build"] = hugo = fastest("hugo")
            name = f"r{res['fastest']['hugo']}"
            res["hugo"]["stderr_tail"] = (root / "logs" / f"hugo-{name}.err").read_text(errors="replace")[-1500:]
            if hugo["rc"] == 0:
                res["hugo"]["output"] = check_hugo_output(hugo_site / f"public-{name}", res["hugo"]["layout"]["posts"], hugo_expected)

        # rebuilds, on the last round's output: a no-change rebuild, then one
        # post edited (a different one each round: a new paragraph before the
        # closing div) and rebuilt
        edited = []
        for k in range(1, rounds + 1):
            print(f"# rebuilds, round {k}: no change ...", file=sys.stderr, flush=True)
            res["loadavg"][f"before_nochange {k}"] = os.getloadavg()
            timed["nochange"].append(run_measured(build_cmd, root, root / "logs" / f"nochange-{k}"))
            fingerprints.append(package_fingerprint())
            victim = files[len(files) * k // (rounds + 1)]
            text = victim.read_text(encoding="utf-8")
            cut = text.rindex("  \n</div>")
            victim.write_text(text[:cut] + "<p>bench edit: one changed paragraph</p>\n" + text[cut:], encoding="utf-8")
            edited.append(str(victim.relative_to(root)))
            print(f"# rebuilds, round {k}: one post changed ...", file=sys.stderr, flush=True)
            res["loadavg"][f"before_onepost {k}"] = os.getloadavg()
            timed["onepost"].append(run_measured(build_cmd, root, root / "logs" / f"onepost-{k}"))
            fingerprints.append(package_fingerprint())
        res["edited_posts"] = edited
        res["rounds"] = {step: [r["wall_s"] for r in runs] for step, runs in timed.items() if runs}
        builds["nochange"] = fastest("nochange")
        builds["onepost"] = fastest("onepost")
        res["package_changed_during_builds"] = len(set(fingerprints)) > 1
        res["targets"] = {
            "cold": builds["cold"]["rc"] in (0, 1) and builds["cold"]["wall_s"] <= res["cold_limit_s"],
            "nochange": builds["nochange"]["wall_s"] < 1.0,
            "onepost": builds["onepost"]["wall_s"] < 1.5,
            # a process tree's memory is judged on the highest simultaneous sum of
            # PSS: the sum of per-process peaks counts every page a forked
            # renderer shares with its parent once per process
            "rss": res["cold_pss_mb_highest"] < rss_limit_mb(args.posts),
        }

        hugo_ok = "build" in res["hugo"] and res["hugo"]["build"]["rc"] == 0 and res["hugo"].get("output", {}).get("complete")
        hugo_s = res["hugo"]["build"]["wall_s"] if hugo_ok else None
        res["ratios_vs_hugo"] = ratios = {}
        if hugo_s:
            ratios["bleach_cold"] = round(builds["cold"]["wall_s"] / hugo_s, 3)
            res["targets"]["cold_vs_hugo"] = builds["cold"]["rc"] in (0, 1) and ratios["bleach_cold"] <= 2.0
            if "cold_nh3" in builds:
                ratios["nh3_cold"] = round(builds["cold_nh3"]["wall_s"] / hugo_s, 3)
                res["targets"]["nh3_vs_hugo"] = builds["cold_nh3"]["rc"] in (0, 1) and ratios["nh3_cold"] < 1.0

        if not args.skip_naive:
            print("# naive script ...", file=sys.stderr, flush=True)
            naive_out = root / "naive-out"
            res["naive"] = run_measured([sys.executable, str(HERE / "naive.py"), str(root / "posts"), str(naive_out)], root, root / "logs" / "naive")

        if not args.skip_serve:
            print("# serving (feeds serve, then nginx) ...", file=sys.stderr, flush=True)
            try:
                serve_bench(root, cfg, (root / "public").resolve(), res)
            except Exception as exc:  # report, do not judge
                res.setdefault("serve", {})["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for proc in STARTED:
            kill_tree(proc, grace=2)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        if earlier_run is not None:
            shutil.rmtree(earlier_run, ignore_errors=True)

    print()
    for key in ("cold", "nochange", "onepost", "cold_nh3", "cold_html5lib"):
        if key not in res["builds"]:
            continue
        r = res["builds"][key]
        print(f"{key}: {r['stdout_tail'].strip().splitlines()[-1] if r['stdout_tail'].strip() else '(no summary)'}; "
              f"{r['warnings']} warning lines, {len(r['stderr_errors'])} error lines shown")
        for line in r["stderr_errors"][:5] + r["stderr_other"][:5]:
            print(f"    {line}")
    if "naive" in res:
        print(f"naive: {res['naive']['stdout_tail'].strip()}")
    h = res.get("hugo", {})
    if "layout" in h:
        lay, out = h["layout"], h.get("output") or {}
        print(f"hugo {h['version']}: {lay['posts']} posts laid out as .{lay['content_format']} ({lay['dates_dropped']} unreadable dates dropped, "
              f"{lay['unreadable_front_matter']} unreadable front matter), expected terms {lay['expected_terms']}; rc {h['build']['rc']}"
              + (f"; check: {'complete' if out.get('complete') else out.get('problems')}" if out else ""))
        if h["build"]["rc"] != 0 or h.get("stderr_tail", "").strip():
            print("    " + "\n    ".join(h.get("stderr_tail", "").strip().splitlines()[-8:]))
    s = res.get("serve", {})
    if s:
        print(f"serve: feed {s.get('feed_path')} status {s.get('feed_status')}, same bytes as built file: {s.get('same_bytes_as_built_file')}, "
              f"If-None-Match → {s.get('if_none_match_status')}; nginx same bytes: {s.get('nginx', {}).get('same_bytes')}"
              + (f"; ERROR {s['error']}" if "error" in s else ""))
    print()
    load = res.get("loadavg", {}).get("before_cold")
    load_text = f", load average {load[0]:.1f} before the cold build" if load else ""
    print(f"## feeds benchmark: N={args.posts}, {cores} cores, build workers={args.workers or 'auto'}, python {res['params']['python']}{load_text}")
    print()
    table = report(res)
    res["table"] = table
    print(table)
    print()
    print("RSS: 'max proc' = largest single process (its VmHWM, polled every 50 ms); 'sum of peaks' = sum of every process's own peak "
          "(VmHWM, polled every 50 ms; an upper bound: pages shared after fork are counted once per process); 'concurrent' = "
          "highest sampled sum of simultaneous RSS, and of PSS (shared pages split between the processes sharing them) — the "
          "memory target is judged on that PSS sum, the tree's real footprint at its peak.")
    if args.json:
        Path(args.json).write_text(json.dumps(res, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        print(f"raw numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
