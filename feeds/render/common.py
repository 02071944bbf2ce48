"""What every renderer shares: ids, titles and the links of one document."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache

from ..model import Article

# Entry and feed ids derive from the post id and the feed path only, so
# they survive edits, rebuilds and a change of [site] url.
_ID_NAMESPACE = uuid.UUID("5f1d7e1e-7c52-4c0b-9a43-2f2b0f6c9d11")


# asked for once per format, each format rendered in a task of its own that
# walks every post: a site larger than the cache misses every time (at 65,536
# entries it held 20 MB in each render process of a 100,000-post build and
# saved nothing); up to this size, each id is made once
@lru_cache(maxsize=1 << 14)
def entry_id(post_id: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, "post:" + post_id))


def feed_id(path: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, "feed:" + path))


def rss_category_names(article: Article) -> list[str]:
    """Every category name of every hierarchy, root first, each once."""
    names: dict[str, None] = {}
    for hierarchy in article.categories:
        for name in hierarchy:
            names.setdefault(name, None)
    for tag in article.tags:
        names.setdefault(tag, None)
    return list(names)


@dataclass(frozen=True)
class FeedMeta:
    id: str
    title: str
    description: str
    author: str
    language: str
    ttl_minutes: int


@dataclass(frozen=True)
class DocLinks:
    self_url: str
    html_url: str
    hub: str = ""
    history: tuple[tuple[str, str], ...] = ()  # (rel, href): current, prev-archive, next-archive
    archive: bool = False
