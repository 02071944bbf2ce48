"""Catalog → every published file: {site path: Resource}.

The same mapping is written to disk by `feeds build` and served from
memory by `feeds serve`, so both always publish identical bytes.

Each feed has a subscription document with its newest `[feeds] items`
entries and, when it has more, RFC 5005 archive pages of the older ones:
page 1 holds the oldest entries, and a page never changes once full.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import jinja2
from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, select_autoescape
from markupsafe import Markup

from ..catalog import KIND_CATEGORY, KIND_SITE, KIND_TAG, Catalog, Feed, category_chain
from .. import __version__
from ..config import Config
from ..gcpause import cyclic_gc_paused
from ..kinds import CONTENT_TYPES, PAGE_CSP
from ..model import Article, Pending, Resource
from ..pipeline import read_body
from ..normalize import UNDATED
from ..slug import absolute_url
from . import jsonfeed, xmlfeeds
from .common import DocLinks, FeedMeta, feed_id
from .opml import render_opml
from .skeleton import Skeletons

FORMAT_FILES = {"atom": "atom", "rss": "rss", "json": "feed"}
FORMAT_EXT = {"atom": "xml", "rss": "xml", "json": "json"}
FORMAT_LABELS = {"atom": "Atom", "rss": "RSS", "json": "JSON"}


def make_key(*parts) -> str:
    return hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class _KeysAfter:
    """Keys of many files that share every part but a few digests, for a fraction of make_key's cost."""

    def __init__(self, *shared):
        self._shared = hashlib.blake2b(repr(shared).encode("utf-8", "surrogatepass"), digest_size=16)

    def __call__(self, *digests: str) -> str:
        key = self._shared.copy()
        key.update("/".join(digests).encode("ascii"))  # hex digits
        return key.hexdigest()


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


# What a renderer keeps of the entries it made and of the bodies it read:
# enough for the documents that list the same posts, planned one after the
# other (see plan()), to share them, and the same whatever the size of the
# site. A renderer that goes on to other documents lets the old ones go.
# Brief entries (archives, and the start of every full one) and full ones
# (a feed's newest items) are kept apart: sharing one budget, the large full
# entries pushed out brief ones that were then made again, 24% more of them
# at 10,000 posts. Apart, every brief entry is made once per format there,
# in the same 16 MB a render process held before. A body is rarely asked
# for twice (a post page once; a full entry once per format, each format in
# a task of its own).
FRAGMENT_BUDGET = 12 << 20
FULL_FRAGMENT_BUDGET = 4 << 20
BODY_BUDGET = 1 << 20
# Up to this many posts a render process keeps every brief entry of its
# format (about 2 KB each): at 10,000 posts the 12 MB above made feedgen
# render one brief entry in ten a second time, and feedgen's entries are
# the largest part of rendering. Larger sites keep the 12 MB, which holds a
# 100,000-post build under 1 GB.
SMALL_SITE_POSTS = 20_000
BRIEF_ENTRY_BYTES = 2 << 10


def fragment_budget(posts: int) -> int:
    """Bytes of brief entries a render process keeps, for a site of `posts` posts."""
    return max(FRAGMENT_BUDGET, posts * BRIEF_ENTRY_BYTES) if posts <= SMALL_SITE_POSTS else FRAGMENT_BUDGET


class _Recent:
    """Values by key, up to about `budget` bytes (len) in all; the least recently used go first."""

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self._values: OrderedDict = OrderedDict()

    def get(self, key):
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        old = self._values.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._values[key] = value
        self.size += len(value)
        while self.size > self.budget and len(self._values) > 1:
            _, dropped = self._values.popitem(last=False)
            self.size -= len(dropped)


# Everything that shapes the code jinja compiles from a template: it names
# the folder of compiled templates, so a change never loads code compiled
# under other options.
TEMPLATE_OPTIONS = {"autoescape": ("html",), "keep_trailing_newline": True}


class _CompiledTemplates(FileSystemBytecodeCache):
    """Compiled templates kept in the build cache: a rebuild that renders a post page loads its code instead of compiling the template again (a twentieth of a one-post rebuild)."""

    def __init__(self, cache_dir: Path):
        options = hashlib.blake2b(repr(sorted(TEMPLATE_OPTIONS.items())).encode(), digest_size=6).hexdigest()
        super().__init__(str(cache_dir / f"templates-jinja{jinja2.__version__}-{options}"))

    def dump_bytecode(self, bucket) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            # only time is lost: the template was compiled and is used; the
            # build cache's own save reports a folder that cannot be written
            pass


class SiteRenderer:
    def __init__(self, config: Config, catalog: Catalog, cache_dir: Path | None = None):
        """`cache_dir`: the build cache's folder, where compiled templates are kept (None: nothing kept)."""
        self._fragment_budget = fragment_budget(len(catalog.articles))
        self._fragments = _Recent(self._fragment_budget)  # (format, True, article) → brief entry
        self._full_fragments = _Recent(FULL_FRAGMENT_BUDGET)  # (format, False, article) → full entry
        self._bodies = _Recent(BODY_BUDGET)
        self._feed_links: dict[str, list[dict]] = {}
        self.config = config
        self.catalog = catalog
        self.base = config.site.base_url
        self.formats = config.feeds.formats
        self.items = config.feeds.items
        # templates are package files that cannot change under a renderer: no
        # stat of every template (and its parents) on every page
        self.env = Environment(
            loader=PackageLoader("feeds", "templates"),
            autoescape=select_autoescape(TEMPLATE_OPTIONS["autoescape"]),
            keep_trailing_newline=TEMPLATE_OPTIONS["keep_trailing_newline"],
            auto_reload=False,
            bytecode_cache=_CompiledTemplates(cache_dir) if cache_dir is not None else None,
        )
        self._templates: dict[str, object] = {}
        # page pieces shared by many pages, made once: feed path → its
        # <link rel="alternate">s, its crumbs, its tag link; article → list item
        self._alternates_html: dict[str, Markup] = {}
        self._category_html: dict[str, tuple[Markup, Markup | None]] = {}
        self._tag_html: dict[str, Markup] = {}
        self._items_html: dict[int, Markup] = {}
        self._dates: dict[int, str] = {}

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

    @cached_property
    def _updated(self) -> list[datetime]:
        return [a.updated for a in self.catalog.articles]

    @cached_property
    def _digests(self) -> list[str]:
        return [a.digest for a in self.catalog.articles]

    def updated_of(self, indices) -> datetime:
        return max(map(self._updated.__getitem__, indices), default=UNDATED)

    def release(self) -> None:
        """Drop the entry fragments and bodies kept: a live server keeps only the finished files."""
        self._fragments = _Recent(self._fragment_budget)
        self._full_fragments = _Recent(FULL_FRAGMENT_BUDGET)
        self._bodies = _Recent(BODY_BUDGET)

    def body(self, index: int) -> str:
        """The article's body; one kept in the build cache is read once while in recent use
        (its post page and its full entry in each format all need it)."""
        article = self.catalog.articles[index]
        if not article.body_file:
            return article.body
        body = self._bodies.get(index)
        if body is None:
            body = read_body(article)
            self._bodies.put(index, body)
        return body

    def entries(self, fmt: str, indices, brief: bool = False) -> list[bytes]:
        """Entry fragments in `fmt`, made on first use and kept while in recent use.

        Kept encoded: a fragment goes into several documents, which are then
        joined as bytes instead of encoding the whole text of every document.
        """
        kept = self._fragments if brief else self._full_fragments
        found: dict[int, bytes] = {}
        missing = []
        for index in dict.fromkeys(indices):
            fragment = kept.get((fmt, brief, index))
            if fragment is None:
                missing.append(index)
            else:
                found[index] = fragment
        if missing:
            for index, fragment in zip(missing, self._make_entries(fmt, missing, brief)):
                found[index] = fragment
                kept.put((fmt, brief, index), fragment)
        return [found[i] for i in indices]

    def _make_entries(self, fmt: str, indices: list[int], brief: bool) -> list[bytes]:
        articles = [self.catalog.articles[i] for i in indices]
        if brief:
            if fmt == "json":
                rendered = jsonfeed.render_items(articles, True)
            else:
                rendered = xmlfeeds.render_entries(articles, fmt, True)
        else:
            bodies = [self.body(i) for i in indices]
            if fmt == "json":
                rendered = jsonfeed.render_items(articles, False, bodies)
            else:
                # a full entry is the brief one (archives list it too) plus the body
                briefs = [b.decode("utf-8") for b in self.entries(fmt, indices, brief=True)]
                rendered = xmlfeeds.add_bodies(briefs, articles, fmt, bodies)
        return [text.encode("utf-8") for text in rendered]

    @cached_property
    def base_key(self) -> str:
        """Everything besides the posts that shapes the output: config, code, version."""
        from ..pipeline import code_fingerprint

        config = dataclasses.replace(self.config, path=None)
        return make_key(repr(config), __version__, code_fingerprint())

    @cached_property
    def tag_feeds(self) -> dict[str, Feed]:
        return {f.name: f for f in self.catalog.tags}

    @cached_property
    def author_feeds(self) -> dict[str, Feed]:
        return {f.name: f for f in self.catalog.authors}

    def digests(self, indices) -> tuple[str, ...]:
        return tuple(map(self._digests.__getitem__, indices))

    def feed_links(self, feed: Feed) -> list[dict]:
        links = self._feed_links.get(feed.path)
        if links is None:
            links = self._feed_links[feed.path] = self._make_feed_links(feed)
        return links

    def _make_feed_links(self, feed: Feed) -> list[dict]:
        return [
            {"href": self.url(doc_path(feed.path, fmt)), "type": CONTENT_TYPES[fmt].split(";")[0], "label": FORMAT_LABELS[fmt], "title": f"{self.title_of(feed)} ({FORMAT_LABELS[fmt]})"}
            for fmt in self.formats
        ]

    # ------------------------------------------------------------ feeds

    def plan_feed(self, feed: Feed) -> Iterator[tuple[int, Pending]]:
        """The feed's documents, each with its newest entry (-1 if none): every format, every page."""
        meta = self.meta_of(feed)
        current, pages = archive_pages(feed.articles, self.items)
        last = len(pages)
        # a document's links follow from its path and what doc_links reads of
        # the page count: the subscription document links to the last page, an
        # archive page to the next one unless it is the last (the site's URL
        # and hub are in base_key). So a new page re-keys only the documents
        # whose links change, not every page of a large feed.
        feed_key = make_key(self.base_key, "feed", meta)
        for page, entries in [(None, current), *enumerate(pages, 1)]:
            entries_key = self.entries_key(entries)
            newest = entries[0] if entries else -1
            links_key = last if page is None else page < last
            for fmt in self.formats:
                path = doc_path(feed.path, fmt, page)
                render = functools.partial(self._render_doc, feed, meta, fmt, page, last, entries)
                # a fragment is rendered once per format and reused by every
                # feed that lists the article; a full entry is made from the
                # brief one, so both kinds share a group (split by kind, the
                # two render processes made a third more brief entries)
                yield newest, Pending(path, make_key(feed_key, path, links_key, entries_key), render, fmt, 1.0 + 0.06 * len(entries))

    def entries_key(self, entries) -> str:
        """A digest of the articles listed (each digest is 32 hex digits: joined, they stay apart)."""
        return hashlib.blake2b("".join(map(self._digests.__getitem__, entries)).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def doc_links(self, feed: Feed, fmt: str, page: int | None, last: int) -> DocLinks:
        """The links of a feed document: the subscription one (page None) or archive `page` of `last`."""
        history: list[tuple[str, str]] = []
        if page is None:
            if last:
                history.append(("prev-archive", self.url(doc_path(feed.path, fmt, last))))
        else:
            history.append(("current", self.url(doc_path(feed.path, fmt))))
            if page > 1:
                history.append(("prev-archive", self.url(doc_path(feed.path, fmt, page - 1))))
            if page < last:
                history.append(("next-archive", self.url(doc_path(feed.path, fmt, page + 1))))
        return DocLinks(
            self_url=self.url(doc_path(feed.path, fmt, page)),
            html_url=self.url(feed.path),
            hub=self.config.websub.hub,
            history=tuple(history),
            archive=page is not None,
        )

    def _render_doc(self, feed: Feed, meta: FeedMeta, fmt: str, page: int | None, last: int, entries) -> Resource:
        links = self.doc_links(feed, fmt, page, last)
        updated = self.updated_of(entries)
        # Archive pages carry summaries and links, not full bodies: every post
        # is in five or more feeds in three formats, and full text in every
        # archive made the tree ~20× the size of the posts. The subscription
        # document, and the article page each entry links to, keep it all.
        fragments = self.entries(fmt, entries, brief=links.archive)
        if fmt == "json":
            older = dict(links.history).get("prev-archive")
            body = jsonfeed.render_document(meta, links, fragments, older, links.html_url)
        else:
            header = xmlfeeds.render_header(meta, links, fmt, updated, self.stylesheet_path)
            body = xmlfeeds.assemble(header, fragments)
        return Resource(body, CONTENT_TYPES[fmt], updated, fmt)

    @property
    def stylesheet_path(self) -> str | None:
        # an absolute URL: browsers apply XSLT only from the feed's own origin
        return self.url("/feed.xsl")

    # ------------------------------------------------------------ pages

    def template(self, name: str):
        found = self._templates.get(name)
        if found is None:
            found = self._templates[name] = self.env.get_template(name)
        return found

    @cached_property
    def macros(self):
        return self.template("_macros.html").module

    def common(self, alternates: list[dict] | Markup, canonical: str | None) -> dict:
        return {
            "site": self.config.site,
            "home": self.url("/"),
            "opml": self.url("/opml.xml"),
            "alternates": alternates if isinstance(alternates, Markup) else self.macros.alternate_links(alternates),
            "canonical": canonical,
            "csp": PAGE_CSP,
        }

    def post_summary(self, index: int) -> dict:
        article = self.catalog.articles[index]
        return {
            "url": article.permalink if not self.config.site.permalink else self.url(article.page),
            "title": article.title,
            "date": self.date_of(index),
            "author": article.author,
            "summary": article.summary,
        }

    def post_item(self, index: int) -> Markup:
        """The article's entry in a page's post list, the same on every page that lists it."""
        item = self._items_html.get(index)
        if item is None:
            item = self._items_html[index] = self.macros.post_item(self.post_summary(index))
        return item

    def date_of(self, index: int) -> str:
        date = self._dates.get(index)
        if date is None:
            date = self._dates[index] = self.format_date(self.catalog.articles[index])
        return date

    def format_date(self, article: Article) -> str:
        if article.date == UNDATED:
            return "undated"
        local = article.date.astimezone(self.config.site.tz)
        return local.strftime("%Y-%m-%d %H:%M")

    def alternates_html(self, feed: Feed) -> Markup:
        html = self._alternates_html.get(feed.path)
        if html is None:
            html = self._alternates_html[feed.path] = self.macros.alternate_links(self.feed_links(feed))
        return html

    def category_html(self, path: str) -> tuple[Markup, Markup | None]:
        """A post's category `path`: its crumbs, and the <link>s of its feeds (None without a chain)."""
        parts = self._category_html.get(path)
        if parts is None:
            chain = category_chain(self.catalog, path)
            crumbs = self.macros.crumbs([{"name": f.name, "url": self.url(f.path)} for f in chain])
            parts = self._category_html[path] = (crumbs, self.alternates_html(chain[-1]) if chain else None)
        return parts

    def tag_html(self, feed: Feed) -> Markup:
        html = self._tag_html.get(feed.path)
        if html is None:
            html = self._tag_html[feed.path] = self.macros.tag_link({"name": feed.name, "url": self.url(feed.path)})
        return html

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
        template = self.template("index.html")
        html = template.render(
            **self.common(self.alternates_html(site_feed), self.url("/")),
            total=len(site_feed.articles),
            feeds=self.feed_links(site_feed),
            categories=[self.tree_node(f) for f in self.catalog.top_categories()],
            tags=[self.tree_node(f) for f in self.catalog.tags],
            authors=[self.tree_node(f) for f in self.catalog.authors],
            posts=[self.post_item(i) for i in site_feed.articles[: self.items]],
        )
        return html.encode("utf-8")

    def render_list_page(self, feed: Feed) -> bytes:
        crumbs = []
        if feed.kind == KIND_CATEGORY:
            crumbs = [{"name": f.name, "url": self.url(f.path)} for f in category_chain(self.catalog, feed.path)[:-1]]
        template = self.template("list.html")
        html = template.render(
            **self.common(self.alternates_html(feed), self.url(feed.path)),
            heading=self.heading_of(feed),
            crumbs=crumbs,
            total=len(feed.articles),
            feeds=self.feed_links(feed),
            children=[self.tree_node(self.catalog.by_path[p]) for p in feed.children],
            posts=[self.post_item(i) for i in feed.articles[: self.items]],
        )
        return html.encode("utf-8")

    def render_post_page(self, index: int) -> tuple[str, bytes]:
        article = self.catalog.articles[index]
        crumbs = []
        alternates = []
        for path in self.catalog.article_feeds[index]:
            chain_crumbs, links = self.category_html(path)
            crumbs.append(chain_crumbs)
            if links is not None:
                alternates.append(links)
        tag_feeds = self.tag_feeds
        tags = Markup("".join([self.tag_html(tag_feeds[t]) for t in article.tags if t in tag_feeds]))
        author_feed = self.author_feeds.get(article.author)
        html = self._post_pages.render({
            "alternates": Markup("".join(alternates)) if alternates else self.alternates_html(self.catalog.site),
            "canonical": article.permalink,
            "title": article.title,
            "date": self.format_date(article),  # once per post: kept, it would only grow
            "iso": article.date.isoformat(),
            "author": article.author,
            "author_url": self.url(author_feed.path) if author_feed else "",
            "original_url": article.original_url,
            "categories": Markup(" · ").join(crumbs),
            "tags": tags,
            "body": Markup(self.body(index)),  # sanitized HTML, printed as it is
        })
        return article.page + "index.html", html.encode("utf-8")

    @cached_property
    def _post_pages(self) -> Skeletons:
        def context(values: dict) -> dict:
            post = dict(values)
            return {**self.common(post.pop("alternates"), post.pop("canonical")), "post": post}

        return Skeletons(self.template("post.html"), context)

    def render_404(self, path: str) -> bytes:
        template = self.template("404.html")
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

    def plan(self) -> Iterator[Pending]:
        """Every file of the site, each with its key; nothing is rendered until asked.

        Feed documents come in the order of their newest entry, newest
        first, whatever their feed: documents that list the same posts (a
        post's category, tag, author and site feeds cover it in pages of
        about the same dates) follow one another, so the few entry fragments
        and bodies a renderer keeps serve them all, at any size of site.
        """
        # planning makes a few small objects per file and no reference
        # cycles: the cyclic collector would only walk the whole catalog
        # over and over (half the time of planning 100,000 posts)
        with cyclic_gc_paused():
            planned = list(self._plan())
        return iter(planned)

    def _plan(self) -> Iterator[Pending]:
        catalog = self.catalog
        newest = self.updated_of(catalog.site.articles)
        tree = tuple((f.path, f.names, len(f.articles)) for f in catalog.feeds)
        latest = self.digests(catalog.site.articles[: self.items])

        def resource(make, content_type, modified, kind):
            return lambda: Resource(make(), content_type, modified, kind)

        yield Pending("/index.html", make_key(self.base_key, "index", tree, latest), resource(self.render_index, CONTENT_TYPES["html"], newest, "html"))
        yield Pending("/opml.xml", make_key(self.base_key, "opml", tree, newest), resource(self.render_opml, CONTENT_TYPES["opml"], newest, "opml"))
        yield Pending("/404.html", make_key(self.base_key, "404"), resource(lambda: self.render_404("…"), CONTENT_TYPES["html"], None, "html"))
        yield Pending("/feed.xsl", make_key(self.base_key, "xsl"), resource(_stylesheet, CONTENT_TYPES["xsl"], None, "xsl"))
        documents: list[tuple[int, Pending]] = []
        for feed in catalog.feeds:
            documents += self.plan_feed(feed)
            if feed.kind != KIND_SITE:
                updated = self.updated_of(feed.articles)
                children = tuple((p, len(catalog.by_path[p].articles)) for p in feed.children)
                chain = tuple(f.path for f in category_chain(catalog, feed.path)) if feed.kind == KIND_CATEGORY else ()
                key = make_key(self.base_key, "list", feed.path, feed.names, len(feed.articles), children, chain, self.digests(feed.articles[: self.items]))
                yield Pending(page_path(feed.path), key, resource(functools.partial(self.render_list_page, feed), CONTENT_TYPES["html"], updated, "html"))
        documents.sort(key=_newest_entry)  # articles are indexed newest first; the sort is stable
        for _, document in documents:
            yield document
        # what a post page shows besides the post: links to its categories (each
        # with its parents), tags and author; many posts share them, so the
        # key of each such context is worked out once
        context_keys: dict[tuple, str] = {}
        post_key = _KeysAfter(self.base_key, "post")
        for index, article in enumerate(catalog.articles):
            context = (catalog.article_feeds[index], article.tags, article.author)
            context_key = context_keys.get(context)
            if context_key is None:
                chains = tuple(tuple((f.name, f.path) for f in category_chain(catalog, path)) for path in context[0])
                tags = tuple(self.tag_feeds[t].path for t in article.tags if t in self.tag_feeds)
                author = self.author_feeds[article.author].path if article.author in self.author_feeds else ""
                context_key = context_keys[context] = make_key(chains, tags, author)
            key = post_key(article.digest, context_key)
            yield Pending(article.page + "index.html", key, _PostPage(self, index))

    def _post_resource(self, index: int) -> Resource:
        return Resource(self.render_post_page(index)[1], CONTENT_TYPES["html"], self.catalog.articles[index].updated, "html")

    def render(self) -> Iterator[tuple[str, Resource]]:
        for pending in self.plan():
            yield pending.path, pending.render()


class _PostPage:
    """Makes the page of one post when called: planned for every post, so half the size of a partial."""

    __slots__ = ("renderer", "index")

    def __init__(self, renderer: SiteRenderer, index: int):
        self.renderer = renderer
        self.index = index

    def __call__(self) -> Resource:
        return self.renderer._post_resource(self.index)


def _newest_entry(document: tuple[int, Pending]) -> int:
    return document[0]


def _stylesheet() -> bytes:
    return resources.files("feeds").joinpath("static/feed.xsl").read_bytes()
