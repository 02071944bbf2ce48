"""RSSHub-style query parameters on live feeds: limit, filter, filterout, brief.

Keywords are plain text matched case-insensitively against title and
summary (never a user-supplied regex: no ReDoS). Unknown parameters (utm_*
and the like) are ignored; a known one with a bad value is a 400 naming it.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from .render import jsonfeed, xmlfeeds
from .render.common import DocLinks
from .render.site import FORMAT_EXT, FORMAT_FILES
from .text import truncate

KNOWN = ("limit", "filter", "filterout", "brief")
MAX_LIMIT = 1000
MAX_KEYWORDS_CHARS = 256
BRIEF_RANGE = (1, 5000)


class QueryError(ValueError):
    pass


def _int(name: str, value: str, low: int, high: int) -> int:
    if not value.isascii() or not value.isdigit():
        raise QueryError(f"{name} must be a whole number from {low} to {high}, got {value[:40]!r}")
    number = int(value)
    if not low <= number <= high:
        raise QueryError(f"{name} must be from {low} to {high}, got {number}")
    return number


def _keywords(name: str, value: str) -> tuple[str, ...]:
    if len(value) > MAX_KEYWORDS_CHARS:
        raise QueryError(f"{name} is longer than {MAX_KEYWORDS_CHARS} characters")
    words = tuple(w.strip().casefold() for w in value.replace(",", "|").split("|") if w.strip())
    if not words:
        raise QueryError(f"{name} needs at least one keyword (separate several with |)")
    return words


def parse(args) -> dict | None:
    """The validated options, or None when no known parameter is present."""
    present = [k for k in KNOWN if k in args]
    if not present:
        return None
    options: dict = {}
    for key in present:
        values = args.getlist(key)
        if len(values) > 1:
            raise QueryError(f"{key} is given {len(values)} times; give it once")
        value = values[0]
        if key == "limit":
            options["limit"] = _int("limit", value, 1, MAX_LIMIT)
        elif key == "brief":
            options["brief"] = _int("brief", value, *BRIEF_RANGE)
        else:
            options[key] = _keywords(key, value)
    return options


def _feed_of(snapshot, key: str):
    """(feed, format) for a subscription document path, else None."""
    directory, _, name = key.rpartition("/")
    feed = snapshot.state.catalog.by_path.get(directory + "/")
    if feed is None:
        return None
    for fmt, stem in FORMAT_FILES.items():
        if name == f"{stem}.{FORMAT_EXT[fmt]}" and fmt in snapshot.renderer.formats:
            return feed, fmt
    return None


def filtered_body(snapshot, key: str, served, args) -> bytes | None:
    """The filtered document for `key`, or None to serve the file as published."""
    options = parse(args)
    if options is None:
        return None
    target = _feed_of(snapshot, key)
    if target is None:
        raise QueryError("limit, filter, filterout and brief apply to feed documents (atom.xml, rss.xml, feed.json) only")
    feed, fmt = target
    renderer = snapshot.renderer
    articles = renderer.catalog.articles
    chosen = []
    limit = options.get("limit", renderer.items)
    include = options.get("filter")
    exclude = options.get("filterout")
    for index in feed.articles:
        article = articles[index]
        haystack = (article.title + "\n" + article.summary).casefold()
        if include and not any(word in haystack for word in include):
            continue
        if exclude and any(word in haystack for word in exclude):
            continue
        chosen.append(article)
        if len(chosen) >= limit:
            break
    if "brief" in options:
        size = options["brief"]
        chosen = [dataclasses.replace(a, summary=truncate(a.summary, size), body="<p>" + _escape(truncate(a.summary, size)) + "</p>") for a in chosen]
    query = urlencode(sorted((k, args.get(k)) for k in KNOWN if k in args))
    from .render.site import doc_path

    meta = renderer.meta_of(feed)
    links = DocLinks(self_url=renderer.url(doc_path(feed.path, fmt)) + "?" + query, html_url=renderer.url(feed.path), hub="")
    updated = max((a.updated for a in chosen), default=renderer.updated_of(()))
    if fmt == "json":
        return jsonfeed.render_document(meta, links, jsonfeed.render_items(chosen), None, links.html_url)
    header = xmlfeeds.render_header(meta, links, fmt, updated, renderer.stylesheet_path)
    return xmlfeeds.assemble(header, xmlfeeds.render_entries(chosen, fmt))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
