"""Change the posts of a load-test corpus every `interval` seconds until told to stop.

    python load_churn.py DIR COUNT SECONDS INTERVAL LOG

Rotates: rewrite an existing post (new title, newer date), add a new post,
delete a post (alternately an original and an earlier churn-added one).
Writes go in place, as a scraper writes them. Every action is appended to
LOG (JSON lines, flushed at once), so the test can compute the expected
final site even if this process is killed.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time
from pathlib import Path

from load_corpus import LEAVES, RESERVED, churn_date, iso, leaf_of, original_rel, original_title, post_text, rel_for, write_in_place


def main() -> int:
    folder, count, seconds, interval, log_path = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    stop = False

    def on_term(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    rng = random.Random(20211116)
    originals = list(range(RESERVED, count))  # present, untouched-by-delete originals
    leaf_count: dict[tuple, int] = {}
    for i in range(count):
        leaf_count[leaf_of(i)] = leaf_count.get(leaf_of(i), 0) + 1
    added: list[tuple[str, tuple, int]] = []  # (rel, leaf, n) still present
    log = open(log_path, "a", encoding="utf-8")
    start = time.monotonic()
    k = 0
    while not stop and time.monotonic() - start < seconds:
        k += 1
        op = ("rewrite", "add", "delete")[k % 3]
        record: dict = {"k": k, "t": round(time.monotonic() - start, 3), "op": op}
        if op == "rewrite":
            if k % 2 and added:
                rel, leaf, n = rng.choice(added)
                title = f"Churn post {n:06d} rev {k}"
            else:
                i = rng.choice(originals)
                rel, leaf, n = original_rel(i), leaf_of(i), i
                title = f"{original_title(i)} rev {k}"
            date = churn_date(k)
            write_in_place(folder / rel, post_text(title, leaf, date, n, updated=date))
            record.update(rel=rel, title=title, date=iso(date))
        elif op == "add":
            leaf = LEAVES[k % len(LEAVES)]
            rel = rel_for(leaf, f"c{k:06d}")
            title = f"Churn post {k:06d} 新"
            date = churn_date(k)
            write_in_place(folder / rel, post_text(title, leaf, date, k))
            added.append((rel, leaf, k))
            leaf_count[leaf] += 1
            record.update(rel=rel, title=title, date=iso(date))
        else:
            if k % 2 and len(added) >= 2:
                rel, leaf, _ = added.pop(-2)  # an earlier churn post: one that is near the top of the feeds
            else:
                candidates = [i for i in rng.sample(originals, min(len(originals), 20)) if leaf_count[leaf_of(i)] > 2]
                if not candidates:
                    continue
                i = candidates[0]
                originals.remove(i)
                rel, leaf = original_rel(i), leaf_of(i)
            (folder / rel).unlink()
            leaf_count[leaf] -= 1
            record.update(rel=rel)
        log.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.flush()
        delay = start + k * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
