"""The "naive script" baseline: one process, python-frontmatter + bleach + feedgen.

    python benchmarks/naive.py POSTS_DIR OUT_DIR [--items 50]

Reads every `**/*.md` below POSTS_DIR, sanitizes each body with one reused
bleach Cleaner, and writes one Atom feed per leaf category
(`OUT_DIR/<group>/<source>/<feed>/atom.xml`, newest `--items` entries).
No cache, no workers, no RSS/JSON/HTML: the least work a publisher can do.
Prints one JSON line of counts on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import bleach
import frontmatter
from feedgen.feed import FeedGenerator

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "figcaption", "figure", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td",
    "th", "thead", "tr", "u", "ul", "video", "source",
}
ATTRIBUTES = {
    "a": ["href", "title"],
    "img": ["src", "alt", "title", "width", "height", "referrerpolicy"],
    "video": ["src", "poster", "controls"],
    "source": ["src", "type"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan"],
}
LOCAL = ZoneInfo("Asia/Shanghai")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_date(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=LOCAL)
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return EPOCH
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def leaf_of(categories) -> tuple[str, ...]:
    if isinstance(categories, str):
        return (categories,)
    if not categories:
        return ("uncategorized",)
    return tuple(str(c[-1] if isinstance(c, list) else c).strip() for c in categories)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("posts")
    parser.add_argument("out")
    parser.add_argument("--items", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    cleaner = bleach.sanitizer.Cleaner(tags=TAGS, attributes=ATTRIBUTES, protocols={"http", "https", "mailto"}, strip=True, strip_comments=True)
    leaves: dict[tuple[str, ...], list[tuple[datetime, str, dict, str]]] = defaultdict(list)
    failed = 0
    root = Path(args.posts)
    files = sorted(root.rglob("*.md"))
    for path in files:
        try:
            post = frontmatter.load(path)
        except Exception as exc:  # a naive script just skips what it cannot read
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        body = cleaner.clean(post.content)
        rel = path.relative_to(root).with_suffix("").as_posix()
        leaves[leaf_of(post.get("categories"))].append((parse_date(post.get("date")), rel, post.metadata, body))
    out = Path(args.out)
    feeds = 0
    for leaf, entries in sorted(leaves.items()):
        entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
        fg = FeedGenerator()
        fg.id("urn:naive:" + "/".join(leaf))
        fg.title(" / ".join(leaf))
        fg.link(href="http://127.0.0.1:8000/" + "/".join(leaf) + "/", rel="alternate")
        fg.updated(entries[0][0])
        for date, rel, meta, body in reversed(entries[: args.items]):
            fe = fg.add_entry()
            fe.id("urn:naive:post:" + rel)
            fe.title(str(meta.get("title") or rel))
            fe.link(href="http://127.0.0.1:8000/posts/" + rel + "/")
            fe.published(date)
            fe.updated(date)
            fe.author(name=str(meta.get("author") or "unknown"))
            fe.content(body, type="html")
        target = out.joinpath(*leaf) / "atom.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        fg.atom_file(str(target))
        feeds += 1
    print(json.dumps({"files": len(files), "failed": failed, "feeds": feeds, "seconds": round(time.perf_counter() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
