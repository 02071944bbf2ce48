"""A synthetic mirror for the load test: N posts in the scraped mirror's shape.

Shared by tests/test_load.py (writes the corpus, computes the expected
feeds) and tests/load/load_churn.py (rewrites, adds and deletes posts),
so both agree on names, titles and dates without passing state around.

Layout: <dir>/g<G>/s<S>/f<F>/<NNNNN>.md, 8 groups x 4 sources x 3 feeds,
categories as the mirror writes them (a 3-level YAML list). Every date
is explicit UTC and unique, so the expected newest-first order is known.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

GROUPS = ["金融", "新媒体", "编程", "游戏", "博客", "图片", "社交媒体", "音视频"]
SOURCES = ["源 A", "源 B", "IT 之家", "少数派"]
FEEDS = ["热榜", "最新", "推荐"]
LEAVES = [(g, s, f) for g in range(len(GROUPS)) for s in range(len(SOURCES)) for f in range(len(FEEDS))]

ORIGINAL_BASE = datetime(2020, 1, 1, tzinfo=timezone.utc)
CHURN_BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
RESERVED = 10  # posts 0..9 are never touched by the churn (their pages are load-tested)

_TEXT = (
    "微软今天正式宣布，为了防止恶意攻击，它已经禁用了协议链接。该协议允许用户直接从网络服务器上安装各种应用程序，"
    "而无需先将其下载到本地存储。当时的想法是，这种方法将为用户节省空间。"
)


def leaf_of(i: int) -> tuple[int, int, int]:
    return LEAVES[i % len(LEAVES)]


def categories(leaf: tuple[int, int, int]) -> list[str]:
    g, s, f = leaf
    return [GROUPS[g], SOURCES[s], FEEDS[f]]


def rel_for(leaf: tuple[int, int, int], name: str) -> str:
    g, s, f = leaf
    return f"g{g}/s{s}/f{f}/{name}.md"


def original_rel(i: int) -> str:
    return rel_for(leaf_of(i), f"{i:05d}")


def original_title(i: int) -> str:
    return f"Load post {i:05d} 第{i}篇"


def original_date(i: int) -> datetime:
    return ORIGINAL_BASE + timedelta(minutes=10 * i)


def churn_date(k: int) -> datetime:
    return CHURN_BASE + timedelta(minutes=k)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def post_text(title: str, leaf: tuple[int, int, int], date: datetime, n: int, updated: datetime | None = None) -> str:
    """One post, ~1.5 KB: front matter over a mirror-like HTML body (ads, lazy images, a script)."""
    g, s, f = leaf
    lines = [
        "---",
        f"title: '{title}'",
        "categories: ",
        *[f" - {c}" for c in categories(leaf)],
        f"headimg: 'https://img.example.com/{n % 97}/{n}.jpg'",
        f"author: {SOURCES[s]}",
        f"tags: [标签{n % 20}, load]",
        "comments: false",
        f"date: {iso(date)}",
    ]
    if updated is not None:
        lines.append(f"updated: {iso(updated)}")
    lines += ["---", "", "<div>   "]
    body = [
        f'<p data-vmark="{n:x}"><a class="s_tag" href="/news/{n}" target="_blank">{GROUPS[g]}</a> {_TEXT}</p>',
        f'<p style="text-align: center;"><img data-original="https://img.example.com/{n % 89}/{n}-b.jpg" src="https://picsum.photos/1" width="760" height="428"></p>',
        f"<p>{_TEXT[n % 40:]} 第 {n} 号。</p>",
        f"<script>track({n})</script><p>{_TEXT[:60]}</p>",
        '<div class="appendQr_wrap"><img src="https://img.example.com/qr.png"><p>扫码关注</p></div>',
        f"<p>{_TEXT[::-1][:80]}</p><p></p>",
    ]
    lines += body + ["  ", "</div>", " " * 12]
    return "\n".join(lines)


def write_corpus(folder: Path, count: int) -> None:
    made: set[Path] = set()
    for i in range(count):
        path = folder / original_rel(i)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_text(post_text(original_title(i), leaf_of(i), original_date(i), i), encoding="utf-8")


def write_in_place(path: Path, text: str) -> None:
    """As a scraper does it: open, truncate, write (not atomic on purpose)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
