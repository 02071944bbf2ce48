"""Catalog → every published file: {site path: Resource}.

The same mapping is written to disk by `feeds build` and served from
memory by `feeds serve`, so both always publish identical bytes.

Each feed has a subscription document with its newest `[feeds] items`
entries and, when it has more, RFC 5005 archive pages of the older ones:
page 1 holds the oldest entries, and a page never changes once full.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from datetime import datetime
from functools import cached_property
from typing import Iterator

from jinja2 import Environment, PackageLoader, select_autoescape

from ..catalog import KIND_AUTHOR, KIND_CATEGORY, KIND_SITE, KIND_TAG, Catalog, Feed, category_chain
from ..config import Config
from ..model import Article
from ..normalize import UNDATED
from ..slug import absolute_url, post_path
from . import jsonfeed, xmlfeeds
from .common import DocLinks, FeedMeta, feed_id
from .opml import render_opml

FORMAT_FILES = {"atom": "atom", "rss": "rss", "json": "feed"}
FORMAT_EXT = {"atom": "xml", "rss": "xml", "json": "json"}
CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "xsl": "text/xsl; charset=utf-8",
}
FORMAT_LABELS = {"atom": "Atom", "rss": "RSS", "json": "JSON"}
PAGE_CSP = "default-src 'none'; img-src http: https: data:; media-src http: https:; style-src 'unsafe-inline'; frame-src https:; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str
    last_modified: datetime | None = None
    kind: str = "page"  # atom, rss, json, html, opml, xsl


def doc_path(base: str, fmt: str, page: int | None = None) -> str:
    name = FORMAT_FILES[fmt] + (f"-{page}" if page else "") + "." + FORMAT_EXT[fmt]
    return base + name


def page_path(base: str) -> str:
    return base + "index.html"


def archive_pages(entries: tuple[int, ...], items: int) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """(current, [page 1, page 2, …]) for entries listed newest first.

    Pages are cut from the oldest entry up, so a full page keeps its
    entries however many posts arrive later.
    """
    current = entries[:items]
    older = entries[items:][::-1]  # oldest first
    pages = [tuple(reversed(older[i : i + items])) for i in range(0, len(older), items)]
    return current, pages


class SiteRenderer:
    def __init__(self, config: Config, catalog: Catalog):
        self.config = config
        self.catalog = catalog
        self.base = config.site.base_url
        self.formats = config.feeds.formats
        self.items = config.feeds.items
        self.env = Environment(loader=PackageLoader("feeds", "templates"), autoescape=select_autoescape(["html"]), keep_trailing_newline=True)

    # ------------------------------------------------------------ helpers

    def url(self, path: str) -> str:
        return absolute_url(self.base, path)

    def title_of(self, feed: Feed) -> str:
        site = self.config.site.title
        if feed.kind == KIND_SITE:
            return site
        if feed.kind == KIND_CATEGORY:
            return f"{' › '.join(feed.names)} · {site}"
        if feed.kind == KIND_TAG:
            return f"#{feed.name} · {site}"
        return f"{feed.name} · {site}"

    def heading_of(self, feed: Feed) -> str:
        if feed.kind == KIND_TAG:
            return f"#{feed.name}"
        return feed.name or self.config.site.title

    def meta_of(self, feed: Feed) -> FeedMeta:
        site = self.config.site
        if feed.kind == KIND_SITE:
            description = site.description
        elif feed.kind == KIND_CATEGORY:
            description = f"Posts in {' › '.join(feed.names)}, with its subcategories — {site.title}"
        elif feed.kind == KIND_TAG:
            description = f"Posts tagged {feed.name} — {site.title}"
        else:
            description = f"Posts by {feed.name} — {site.title}"
        return FeedMeta(
            id=feed_id(feed.path),
            title=self.title_of(feed),
            description=description or site.title,
            author=site.author or site.title,
            language=site.language,
            ttl_minutes=max(1, self.config.server.max_age // 60),
        )

    def updated_of(self, indices) -> datetime:
        articles = self.catalog.articles
        return max((articles[i].updated for i in indices), default=UNDATED)

    @cached_property
    def fragments(self) -> dict[str, list[str]]:
        articles = self.catalog.articles
        out: dict[str, list[str]] = {}
        for fmt in self.formats:
            if fmt == "json":
                out[fmt] = jsonfeed.render_items(articles)
            else:
                out[fmt] = xmlfeeds.render_entries(articles, fmt)
        return out

    def feed_links(self, feed: Feed) -> list[dict]:
        return [
            {"href": self.url(doc_path(feed.path, fmt)), "type": CONTENT_TYPES[fmt].split(";")[0], "label": FORMAT_LABELS[fmt], "title": f"{self.title_of(feed)} ({FORMAT_LABELS[fmt]})"}
            for fmt in self.formats
        ]

    # ------------------------------------------------------------ feeds

    def render_feed(self, feed: Feed) -> Iterator[tuple[str, Resource]]:
        meta = self.meta_of(feed)
        current, pages = archive_pages(feed.articles, self.items)
        hub = self.config.websub.hub
        html_url = self.url(feed.path)
        for fmt in self.formats:
            fragments = self.fragments[fmt]
            documents = [(None, current)] + [(k, entries) for k, entries in enumerate(pages, 1)]
            last = len(pages)
            for page, entries in documents:
                self_url = self.url(doc_path(feed.path, fmt, page))
                current_url = self.url(doc_path(feed.path, fmt))
                history: list[tuple[str, str]] = []
                if page is None:
                    if last:
                        history.append(("prev-archive", self.url(doc_path(feed.path, fmt, last))))
                else:
                    history.append(("current", current_url))
                    if page > 1:
                        history.append(("prev-archive", self.url(doc_path(feed.path, fmt, page - 1))))
                    if page < last:
                        history.append(("next-archive", self.url(doc_path(feed.path, fmt, page + 1))))
                links = DocLinks(self_url=self_url, html_url=html_url, hub=hub, history=tuple(history), archive=page is not None)
                updated = self.updated_of(entries)
                if fmt == "json":
                    older = dict(history).get("prev-archive")
                    body = jsonfeed.render_document(meta, links, [fragments[i] for i in entries], older, html_url)
                else:
                    header = xmlfeeds.render_header(meta, links, fmt, updated, self.stylesheet_path)
                    body = xmlfeeds.assemble(header, [fragments[i] for i in entries])
                yield doc_path(feed.path, fmt, page), Resource(body, CONTENT_TYPES[fmt], updated, fmt)

    @property
    def stylesheet_path(self) -> str | None:
        # an absolute URL: browsers apply XSLT only from the feed's own origin
        return self.url("/feed.xsl")

    # ------------------------------------------------------------ pages

    def common(self, alternates: list[dict], canonical: str | None) -> dict:
        return {
            "site": self.config.site,
            "home": self.url("/"),
            "opml": self.url("/opml.xml"),
            "alternates": alternates,
            "canonical": canonical,
            "csp": PAGE_CSP,
        }

    def post_summary(self, index: int) -> dict:
        article = self.catalog.articles[index]
        return {
            "url": article.permalink if not self.config.site.permalink else self.url(post_path(article.id)),
            "title": article.title,
            "date": self.format_date(article),
            "author": article.author,
            "summary": article.summary,
        }

    def format_date(self, article: Article) -> str:
        if article.date == UNDATED:
            return "undated"
        local = article.date.astimezone(self.config.site.tz)
        return local.strftime("%Y-%m-%d %H:%M")

    def tree_node(self, feed: Feed) -> dict:
        return {
            "name": feed.name,
            "url": self.url(feed.path),
            "count": len(feed.articles),
            "feeds": self.feed_links(feed),
            "children": [self.tree_node(self.catalog.by_path[p]) for p in feed.children],
        }

    def render_index(self) -> bytes:
        site_feed = self.catalog.site
        template = self.env.get_template("index.html")
        html = template.render(
            **self.common(self.feed_links(site_feed), self.url("/")),
            total=len(site_feed.articles),
            feeds=self.feed_links(site_feed),
            categories=[self.tree_node(f) for f in self.catalog.top_categories()],
            tags=[self.tree_node(f) for f in self.catalog.tags],
            authors=[self.tree_node(f) for f in self.catalog.authors],
            posts=[self.post_summary(i) for i in site_feed.articles[: self.items]],
        )
        return html.encode("utf-8")

    def render_list_page(self, feed: Feed) -> bytes:
        crumbs = []
        if feed.kind == KIND_CATEGORY:
            crumbs = [{"name": f.name, "url": self.url(f.path)} for f in category_chain(self.catalog, feed.path)[:-1]]
        template = self.env.get_template("list.html")
        html = template.render(
            **self.common(self.feed_links(feed), self.url(feed.path)),
            heading=self.heading_of(feed),
            crumbs=crumbs,
            total=len(feed.articles),
            feeds=self.feed_links(feed),
            children=[self.tree_node(self.catalog.by_path[p]) for p in feed.children],
            posts=[self.post_summary(i) for i in feed.articles[: self.items]],
        )
        return html.encode("utf-8")

    def render_post_page(self, index: int) -> tuple[str, bytes]:
        article = self.catalog.articles[index]
        category_paths = self.catalog.article_feeds[index]
        chains = []
        alternates = []
        for path in category_paths:
            chain = category_chain(self.catalog, path)
            chains.append([{"name": f.name, "url": self.url(f.path)} for f in chain])
            if chain:
                alternates.extend(self.feed_links(chain[-1]))
        tags = [f for f in self.catalog.tags if index in set(f.articles)] if article.tags else []
        author_feed = next((f for f in self.catalog.authors if f.name == article.author), None)
        template = self.env.get_template("post.html")
        page = post_path(article.id)
        html = template.render(
            **self.common(alternates or self.feed_links(self.catalog.site), article.permalink),
            post={
                "title": article.title,
                "date": self.format_date(article),
                "iso": article.date.isoformat(),
                "author": article.author,
                "author_url": self.url(author_feed.path) if author_feed else "",
                "original_url": article.original_url,
                "categories": chains,
                "tags": [{"name": f.name, "url": self.url(f.path)} for f in tags],
                "body": article.body,
            },
        )
        return page + "index.html", html.encode("utf-8")

    def render_404(self, path: str) -> bytes:
        template = self.env.get_template("404.html")
        return template.render(**self.common([], None), path=path).encode("utf-8")

    def render_opml(self) -> bytes:
        preferred = next((f for f in self.formats if f in ("atom", "rss")), None)
        if preferred is None:
            preferred = self.formats[0]

        def node(feed: Feed, with_children: bool = True) -> dict:
            return {
                "text": self.heading_of(feed),
                "type": "rss",
                "xmlUrl": self.url(doc_path(feed.path, preferred)),
                "htmlUrl": self.url(feed.path),
                "children": [node(self.catalog.by_path[p]) for p in feed.children] if with_children and feed.kind == KIND_CATEGORY else [],
            }

        site_node = node(self.catalog.site, with_children=False)
        site_node["text"] = f"{self.config.site.title} (all posts)"
        return render_opml(
            title=self.config.site.title,
            owner=self.config.site.author or self.config.site.title,
            docs_url="http://opml.org/spec2.opml",
            updated=self.updated_of(self.catalog.site.articles),
            tree=[node(f) for f in self.catalog.top_categories()],
            groups=[("Tags", [node(f) for f in self.catalog.tags]), ("Authors", [node(f) for f in self.catalog.authors])],
            site_feed=site_node,
        )

    # ------------------------------------------------------------ all

    def render(self) -> Iterator[tuple[str, Resource]]:
        newest = self.updated_of(self.catalog.site.articles)
        yield "/index.html", Resource(self.render_index(), CONTENT_TYPES["html"], newest, "html")
        yield "/opml.xml", Resource(self.render_opml(), CONTENT_TYPES["opml"], newest, "opml")
        yield "/404.html", Resource(self.render_404("…"), CONTENT_TYPES["html"], None, "html")
        yield "/feed.xsl", Resource(_stylesheet(), CONTENT_TYPES["xsl"], None, "xsl")
        for feed in self.catalog.feeds:
            yield from self.render_feed(feed)
            if feed.kind != KIND_SITE:
                updated = self.updated_of(feed.articles)
                yield page_path(feed.path), Resource(self.render_list_page(feed), CONTENT_TYPES["html"], updated, "html")
        for index, article in enumerate(self.catalog.articles):
            path, body = self.render_post_page(index)
            yield path, Resource(body, CONTENT_TYPES["html"], article.updated, "html")


def _stylesheet() -> bytes:
    return resources.files("feeds").joinpath("static/feed.xsl").read_bytes()


def render_site(config: Config, catalog: Catalog) -> Iterator[tuple[str, Resource]]:
    return SiteRenderer(config, catalog).render()
