"""WebSub publishing: tell the hub which feed documents changed.

The hub is told with one form POST per changed feed URL
(`hub.mode=publish`, `hub.url`), the publish convention the common hubs
accept. Pings run on a background thread with a timeout: a slow or broken
hub never delays serving.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from typing import Iterable, Mapping
from urllib.parse import urlencode

from .slug import absolute_url

log = logging.getLogger("feeds.websub")

FEED_KINDS = ("atom", "rss", "json")
SUBSCRIPTION_NAMES = ("atom.xml", "rss.xml", "feed.json")  # archive pages are not subscribed to


def changed_feeds(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    """Site paths of subscription documents that are new or whose bytes changed.

    `old` and `new` are manifests (path → entry with `digest` and `kind`,
    see feeds/served.py) of the builds before and after a switch.
    """
    changed = []
    for path, entry in new.items():
        if getattr(entry, "kind", None) not in FEED_KINDS or path.rsplit("/", 1)[-1] not in SUBSCRIPTION_NAMES:
            continue
        before = old.get(path)
        if before is None or getattr(before, "digest", None) != getattr(entry, "digest", None):
            changed.append(path)
    return sorted(changed)


def ping(hub: str, urls: Iterable[str], timeout: float = 5.0) -> list[tuple[str, int | str]]:
    """POST one publish notice per URL; → [(url, HTTP status or error text)]."""
    results = []
    for url in urls:
        data = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
        request = urllib.request.Request(hub, data=data, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "feeds-websub"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                results.append((url, response.status))
        except urllib.error.HTTPError as exc:
            results.append((url, exc.code))
            log.warning("websub: hub %s answered %s for %s", hub, exc.code, url)
        except (urllib.error.URLError, OSError) as exc:
            results.append((url, str(exc)))
            log.warning("websub: cannot reach hub %s for %s: %s", hub, url, exc)
    return results


class Publisher:
    """Called by the builder after each switch with the old and new manifests.

    There is one builder per `feeds serve`, so each change is announced
    once, whatever the number of server workers.
    """

    def __init__(self, hub: str, base_url: str):
        self.hub = hub
        self.base_url = base_url
        self.last: list[tuple[str, int | str]] = []
        self.done = threading.Event()

    def __call__(self, old: Mapping[str, object], new: Mapping[str, object]) -> threading.Thread | None:
        paths = changed_feeds(old, new)
        if not paths:
            return None
        urls = [absolute_url(self.base_url, p) for p in paths]
        self.done.clear()

        def run() -> None:
            self.last = ping(self.hub, urls)
            self.done.set()

        thread = threading.Thread(target=run, name="feeds-websub", daemon=True)
        thread.start()
        return thread
