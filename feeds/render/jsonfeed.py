"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1), each item serialized once."""

from __future__ import annotations

import json

from ..model import Article
from .common import DocLinks, FeedMeta, entry_id, rss_category_names

VERSION = "https://jsonfeed.org/version/1.1"
_ITEMS = "\u0000items\u0000"


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_item(article: Article, brief: bool = False, body: str | None = None) -> str:
    """The item as JSON; a full one needs `body` when the article's is kept in the build cache."""
    item: dict = {
        "id": entry_id(article.id),
        "url": article.permalink,
    }
    if article.original_url:
        item["external_url"] = article.original_url
    item["title"] = article.title
    if brief:
        item["content_text"] = article.summary or article.title
    else:
        if body is None:
            if article.body_file:
                raise ValueError(f"{article.source}: body not loaded (use pipeline.with_body)")  # never publish an empty body by mistake
            body = article.body
        item["content_html"] = body or "<p></p>"
    if article.summary:
        item["summary"] = article.summary
    if article.image:
        item["image"] = article.image
    if not article.undated:  # JSON Feed dates are optional: better none than a made-up one
        item["date_published"] = article.date.isoformat()
        item["date_modified"] = article.updated.isoformat()
    if article.author:
        item["authors"] = [{"name": article.author}]
    tags = rss_category_names(article)
    if tags:
        item["tags"] = tags
    return _dump(item)


def render_items(articles, brief: bool = False, bodies=None) -> list[str]:
    if bodies is None:
        return [render_item(a, brief) for a in articles]
    return [render_item(a, brief, body) for a, body in zip(articles, bodies)]


def render_document(meta: FeedMeta, links: DocLinks, items: list[bytes], next_url: str | None, home: str, icon: str | None = None) -> bytes:
    """The document around `items` (UTF-8, as `render_item` made them, encoded)."""
    feed: dict = {
        "version": VERSION,
        "title": meta.title,
        "home_page_url": links.html_url,
        "feed_url": links.self_url,
        "description": meta.description,
        "authors": [{"name": meta.author}],
        "language": meta.language,
    }
    if next_url:
        feed["next_url"] = next_url
    if links.hub:
        feed["hubs"] = [{"type": "WebSub", "url": links.hub}]
    feed["items"] = _ITEMS
    head, tail = _dump(feed).split(_dump(_ITEMS), 1)
    return b"".join([head.encode("utf-8"), b"[", b",".join(items), b"]", tail.encode("utf-8")])
