"""Atom 1.0 and RSS 2.0 with feedgen, each entry rendered once per format.

feedgen serializes a batch of entries in one document; the batch is cut
into per-entry fragments (entries never nest, and feedgen escapes all text,
so the k-th `<entry>` pairs with the k-th `</entry>`). A feed document is
then a feedgen-made header with the fragments of its entries spliced in
before its closing tag. Header and batch load the same extensions, so every
prefix a fragment uses is declared on the document's root.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from datetime import datetime

from feedgen.feed import FeedGenerator
from feedgen.ext.dc import DcEntryExtension, DcExtension  # after feedgen.feed: feedgen.util needs lxml.etree already imported

from .. import __version__
from ..model import Article
from .common import DocLinks, FeedMeta, entry_id, rss_category_names
from .media_ext import ImageEntryExtension, ImageExtension

GENERATOR_URI = "https://pypi.org/project/feeds/"
FH_NS = "http://purl.org/syndication/history/1.0"
SY_NS = "http://purl.org/rss/1.0/modules/syndication/"
BATCH = 500


def _new_generator() -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("image", ImageExtension, ImageEntryExtension, atom=True, rss=True)
    # what load_extension("dc") registers, without its by-name import that
    # first looks for a missing feedgen.ext.dc_entry module on disk: a third
    # of the cost of a feed header
    fg.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
    return fg


def _add_entry(fg: FeedGenerator, article: Article, fmt: str, brief: bool = False) -> None:
    if article.body_file and not brief:
        raise ValueError(f"{article.source}: body not loaded (use pipeline.with_body)")  # never publish an empty body by mistake
    fe = fg.add_entry(order="append")
    uid = entry_id(article.id)
    fe.id(uid)
    fe.title(article.title)
    fe.link(href=article.permalink, rel="alternate", type="text/html")
    if article.original_url and fmt == "atom":
        fe.link(href=article.original_url, rel="related", type="text/html")
    fe.updated(article.updated)
    if fmt == "atom":
        fe.published(article.date)
    elif not article.undated:
        fe.pubDate(article.date)  # undated posts: readers fall back to when they first saw it
    if fmt == "atom":
        if article.author:
            fe.author({"name": article.author})
        fe.summary(article.summary or article.title)
        if not brief:
            fe.content(article.body or "<p></p>", type="html")
        names = rss_category_names(article)
        if names:
            # one call: feedgen checks and re-maps its whole category list on every call
            fe.category([{"term": name, "label": name} for name in names])
    else:
        fe.guid(uid, permalink=False)
        if article.author:
            fe.dc.dc_creator(article.author)
        # RSS <description> is HTML: the plain-text summary is escaped once more
        fe.description(html.escape(article.summary or article.title, quote=False))
        if article.body and not brief:
            fe.content(article.body, type="html")
        names = rss_category_names(article)
        if names:
            fe.category([{"term": name} for name in names])
    if article.image:
        fe.image.image(article.image)


def _cut(document: str, open_tag: str, close_tag: str) -> list[str]:
    out = []
    position = 0
    while True:
        start = document.find(open_tag, position)
        if start < 0:
            return out
        end = document.index(close_tag, start) + len(close_tag)
        out.append(document[start:end])
        position = end


def render_entries(articles: list[Article] | tuple[Article, ...], fmt: str, brief: bool = False) -> list[str]:
    """Every article as an `<entry>` (atom) or `<item>` (rss) fragment, in order.

    `brief` entries carry the summary and the link but not the full body.
    """
    open_tag, close_tag = ("<entry>", "</entry>") if fmt == "atom" else ("<item>", "</item>")
    fragments: list[str] = []
    for start in range(0, len(articles), BATCH):
        batch = articles[start : start + BATCH]
        fg = _new_generator()
        fg.id("urn:feeds:batch")
        fg.title("batch")
        fg.link(href="http://localhost/", rel="alternate")
        fg.description("batch")
        for article in batch:
            _add_entry(fg, article, fmt, brief)
        document = (fg.atom_str if fmt == "atom" else fg.rss_str)(pretty=False).decode("utf-8")
        pieces = _cut(document, open_tag, close_tag)
        if len(pieces) != len(batch):  # would mean feedgen changed its output shape
            raise RuntimeError(f"{fmt}: cut {len(pieces)} fragments from {len(batch)} entries")
        fragments.extend(pieces)
    return fragments


def _escaped_text(text: str) -> str:
    """`text` as lxml writes it inside an element of a UTF-8 document (feedgen's serializer).

    lxml escapes these four and writes every other character as it is
    (125 µs for a 12,000-character body, against 51 µs here). `text` is a
    sanitized body, already XML-safe: lxml would refuse a character XML
    forbids, and looking for one would cost more than the escaping.
    """
    return html.escape(text, quote=False).replace("\r", "&#13;")


def add_bodies(briefs: list[str], articles, fmt: str, bodies=None) -> list[str]:
    """Full entries from brief ones (same articles, with their `bodies` or bodies loaded), in order.

    A full entry is its brief entry plus one text element holding the body,
    at the place feedgen puts it: in Atom `<content>` right before the first
    `<link` (entry text is escaped, so that is the first link element), in
    RSS `<content:encoded>` right after `</description>`. Rendering only the
    brief entry with feedgen halves the entries it makes: most posts appear
    in archives (brief) and in some feed's newest items (full). An article
    outside those shapes is rendered whole by feedgen instead.
    """
    if bodies is None:
        unloaded = next((article for article in articles if article.body_file), None)
        if unloaded is not None:
            raise ValueError(f"{unloaded.source}: body not loaded (use pipeline.with_body)")  # never publish an empty body by mistake
        bodies = [article.body for article in articles]
    out: list[str | None] = []
    whole: list[int] = []
    for k, (brief, article, body) in enumerate(zip(briefs, articles, bodies)):
        if fmt == "atom":
            at = brief.find("<link ")
            if at < 0:
                whole.append(k)
                out.append(None)
                continue
            out.append(brief[:at] + '<content type="html">' + _escaped_text(body or "<p></p>") + "</content>" + brief[at:])
        elif not body:
            out.append(brief)  # feedgen writes no content:encoded for an empty body either
        elif not (article.summary or article.title):
            # an empty description: feedgen would put the body there instead
            whole.append(k)
            out.append(None)
        else:
            at = brief.index("</description>") + len("</description>")
            out.append(brief[:at] + "<content:encoded>" + _escaped_text(body) + "</content:encoded>" + brief[at:])
    if whole:
        loaded = [replace(articles[k], body=bodies[k], body_file="") for k in whole]
        for k, fragment in zip(whole, render_entries(loaded, fmt)):
            out[k] = fragment
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class Header:
    head: str  # everything before the entries
    tail: str  # the closing tags


def render_header(meta: FeedMeta, links: DocLinks, fmt: str, updated: datetime, stylesheet: str | None) -> Header:
    fg = _new_generator()
    fg.id(meta.id)
    fg.title(meta.title)
    fg.author({"name": meta.author})
    fg.language(meta.language)
    fg.generator("feeds", __version__, GENERATOR_URI)
    fg.link(href=links.self_url, rel="self", type="application/atom+xml" if fmt == "atom" else "application/rss+xml")
    fg.link(href=links.html_url, rel="alternate", type="text/html")
    if fmt == "atom":
        fg.subtitle(meta.description)
        fg.updated(updated)
        if links.hub:
            fg.link(href=links.hub, rel="hub")
        for rel, href in links.history:
            fg.link(href=href, rel=rel, type="application/atom+xml")
        document = fg.atom_str(pretty=False).decode("utf-8")
        close = "</feed>"
    else:
        fg.description(meta.description)
        fg.lastBuildDate(updated)
        fg.pubDate(updated)
        fg.ttl(max(1, meta.ttl_minutes))
        document = fg.rss_str(pretty=False).decode("utf-8")
        close = "</channel>"
        # sy: says the same as ttl, for readers that only know the RSS 1.0 module
        period, frequency = _update_period(meta.ttl_minutes)
        document = _declare(document, "sy", SY_NS)
        extra = [f"<sy:updatePeriod>{period}</sy:updatePeriod><sy:updateFrequency>{frequency}</sy:updateFrequency>"]
        if links.hub:
            extra.append(f'<atom:link href="{_attr(links.hub)}" rel="hub"/>')
        for rel, href in links.history:
            extra.append(f'<atom:link href="{_attr(href)}" rel="{rel}" type="application/rss+xml"/>')
        if extra:
            document = _after_self(document, "".join(extra))
    if links.archive:
        # RFC 5005 §4: an archive document carries fh:archive
        document = _declare(document, "fh", FH_NS)
        document = document.replace(close, "<fh:archive/>" + close, 1)
    if stylesheet:
        decl_end = document.index("?>") + 2
        document = document[:decl_end] + f'<?xml-stylesheet type="text/xsl" href="{_attr(stylesheet)}"?>' + document[decl_end:]
    cut = document.rindex(close)
    return Header(document[:cut], document[cut:])


def _update_period(minutes: int) -> tuple[str, int]:
    """ttl in minutes → (sy:updatePeriod, sy:updateFrequency), as close as the module allows."""
    minutes = max(1, minutes)
    for period, length in (("hourly", 60), ("daily", 1440), ("weekly", 10080), ("monthly", 43200), ("yearly", 525600)):
        if minutes <= length:
            return period, max(1, round(length / minutes))
    return "yearly", 1


def _after_self(document: str, extra: str) -> str:
    marker = 'rel="self"'
    at = document.index(marker)
    end = document.index("/>", at) + 2
    return document[:end] + extra + document[end:]


def _declare(document: str, prefix: str, uri: str) -> str:
    root_start = document.index("<", document.index("?>") + 2)
    name_end = document.index(" ", root_start)
    return document[:name_end] + f' xmlns:{prefix}="{uri}"' + document[name_end:]


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def assemble(header: Header, fragments: list[bytes]) -> bytes:
    """The document: header and UTF-8 entry fragments (as `render_entries` made them, encoded)."""
    return b"".join([header.head.encode("utf-8"), *fragments, header.tail.encode("utf-8")])
