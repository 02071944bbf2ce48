"""RSSHub-style query parameters on live feeds: limit, filter, filterout, brief.

Keywords are plain text matched case-insensitively against title and
summary (never a user-supplied regex: no ReDoS). Unknown parameters (utm_*
and the like) are ignored; a known one with a bad value is a 400 naming it.

The filtered document is cut from the published documents themselves, not
from the articles (a server worker holds no articles): the subscription
document first, then, while `limit` wants more entries, the RFC 5005
archive pages its `prev-archive` link (JSON Feed: `next_url`) leads to.
Archive entries carry summaries, not full bodies, by design; so do the
older entries of a long filtered list.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Callable
from urllib.parse import unquote, urlencode, urlsplit

from .slug import url_quote
from .text import truncate

KNOWN = ("limit", "filter", "filterout", "brief")
MAX_LIMIT = 1000
MAX_KEYWORDS_CHARS = 256
BRIEF_RANGE = (1, 5000)
MAX_ARCHIVE_PAGES = 2000  # a loop guard; real chains end long before

SUBSCRIPTION = {"atom.xml": "atom", "rss.xml": "rss", "feed.json": "json"}
ARCHIVE_NAME = {"atom": re.compile(r"atom-[1-9][0-9]*\.xml"), "rss": re.compile(r"rss-[1-9][0-9]*\.xml"), "json": re.compile(r"feed-[1-9][0-9]*\.json")}
ATOM = "{http://www.w3.org/2005/Atom}"
RSS_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
HISTORY_RELS = ("hub", "prev-archive", "next-archive", "current")


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


def canonical_query(args) -> str:
    return urlencode(sorted((k, args.get(k)) for k in KNOWN if k in args))


def subscription_format(path: str, kind: str) -> str | None:
    """The format of a subscription document (atom.xml, rss.xml, feed.json), else None."""
    fmt = SUBSCRIPTION.get(path.rsplit("/", 1)[-1])
    return fmt if fmt == kind else None


def _archive_path(href: str | None, folder: str, fmt: str, base_url: str) -> str | None:
    """Site path of the archive page a history link names, if it is one of this feed's."""
    if not href:
        return None
    parts = urlsplit(href)
    base = urlsplit(base_url)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        return None
    path = unquote(parts.path)
    prefix = base.path.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/"):
            return None
        path = path[len(prefix) :]
    where, _, name = path.rpartition("/")
    if where + "/" != folder or not ARCHIVE_NAME[fmt].fullmatch(name):
        return None
    return path


class _Chooser:
    def __init__(self, options: dict, items: int):
        self.limit = options.get("limit", items)
        self.include = options.get("filter")
        self.exclude = options.get("filterout")

    def wants(self, title: str, summary: str) -> bool:
        haystack = (title + "\n" + summary).casefold()
        if self.include and not any(word in haystack for word in self.include):
            return False
        if self.exclude and any(word in haystack for word in self.exclude):
            return False
        return True


def filtered_document(path: str, fmt: str, body: bytes, read: Callable[[str], bytes | None], args, *, base_url: str, items: int) -> bytes:
    """The document at `path` cut down by the query in `args`.

    `read(path)` gives another published document (an archive page) or
    None. Raises QueryError for bad values.
    """
    options = parse(args)
    assert options is not None
    chooser = _Chooser(options, items)
    folder = path.rsplit("/", 1)[0] + "/"
    self_url = base_url + url_quote(path) + "?" + canonical_query(args)
    brief = options.get("brief")
    if fmt == "json":
        return _filter_json(body, folder, read, chooser, self_url, brief, base_url)
    return _filter_xml(body, fmt, folder, read, chooser, self_url, brief, base_url)


def _pages(first, next_href: Callable, parse_doc: Callable, folder: str, fmt: str, read, base_url: str):
    """The subscription document, then each archive page down the chain."""
    doc = first
    seen: set[str] = set()
    while doc is not None:
        yield doc
        archive = _archive_path(next_href(doc), folder, fmt, base_url)
        if archive is None or archive in seen or len(seen) >= MAX_ARCHIVE_PAGES:
            return
        seen.add(archive)
        raw = read(archive)
        doc = parse_doc(raw) if raw is not None else None


def _filter_xml(body: bytes, fmt: str, folder: str, read, chooser: _Chooser, self_url: str, brief: int | None, base_url: str) -> bytes:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(body, parser)
    if fmt == "atom":
        container, entry_tag, summary_tag, content_tag = root, ATOM + "entry", ATOM + "summary", ATOM + "content"
        link_tag = ATOM + "link"
    else:
        container = root.find("channel")
        if container is None:
            raise QueryError("the published document has no channel")
        entry_tag, summary_tag, content_tag, link_tag = "item", "description", RSS_CONTENT, ATOM + "link"

    def history(doc) -> str | None:
        holder = doc if fmt == "atom" else doc.find("channel")
        for link in holder.iterfind(link_tag) if holder is not None else ():
            if link.get("rel") == "prev-archive":
                return link.get("href")
        return None

    def summary_of(entry) -> str:
        text = entry.findtext(summary_tag) or ""
        return html.unescape(text) if fmt == "rss" else text  # RSS descriptions are escaped HTML

    chosen = []
    for doc in _pages(root, history, lambda raw: etree.fromstring(raw, parser), folder, fmt, read, base_url):
        holder = doc if fmt == "atom" else doc.find("channel")
        for entry in list(holder.iterfind(entry_tag)) if holder is not None else ():
            if chooser.wants(entry.findtext("title" if fmt == "rss" else ATOM + "title") or "", summary_of(entry)):
                chosen.append(entry)
                if len(chosen) >= chooser.limit:
                    break
        if len(chosen) >= chooser.limit:
            break

    for entry in list(container.iterfind(entry_tag)):
        container.remove(entry)
    for link in list(container.iterfind(link_tag)):
        rel = link.get("rel")
        if rel == "self":
            link.set("href", self_url)
        elif rel in HISTORY_RELS:
            container.remove(link)
    for entry in chosen:
        if brief is not None:
            short = truncate(summary_of(entry), brief)
            summary = entry.find(summary_tag)
            if summary is not None:
                summary.text = html.escape(short, quote=False) if fmt == "rss" else short
            content = entry.find(content_tag)
            if content is not None:
                content.text = "<p>" + html.escape(short, quote=False) + "</p>"
        container.append(entry)
    if fmt == "atom":
        dates = [e.findtext(ATOM + "updated") for e in chosen]
        newest = max((d for d in dates if d), key=_when, default=None)
        updated = root.find(ATOM + "updated")
        if newest is not None and updated is not None:
            updated.text = newest
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _when(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.min


def _filter_json(body: bytes, folder: str, read, chooser: _Chooser, self_url: str, brief: int | None, base_url: str) -> bytes:
    feed = json.loads(body)
    chosen = []
    for doc in _pages(feed, lambda d: d.get("next_url"), json.loads, folder, "json", read, base_url):
        for item in doc.get("items") or ():
            if chooser.wants(item.get("title") or "", item.get("summary") or ""):
                chosen.append(item)
                if len(chosen) >= chooser.limit:
                    break
        if len(chosen) >= chooser.limit:
            break
    if brief is not None:
        for item in chosen:
            short = truncate(item.get("summary") or "", brief)
            if "summary" in item:
                item["summary"] = short
            if "content_html" in item:
                item["content_html"] = "<p>" + html.escape(short, quote=False) + "</p>"
            if "content_text" in item:
                item["content_text"] = short
    feed["feed_url"] = self_url
    feed.pop("next_url", None)
    feed.pop("hubs", None)
    feed["items"] = chosen
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
