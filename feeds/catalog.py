"""Articles → the set of feeds: site, category tree, tags, authors.

Every feed lists its articles newest first (date, then id, so ties are
stable). A category feed includes its descendants' posts. Slugs are unique
among siblings; a collision is reported and resolved deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import WARNING, Article, Problem
from .slug import slugify

KIND_SITE = "site"
KIND_CATEGORY = "category"
KIND_TAG = "tag"
KIND_AUTHOR = "author"


@dataclass(frozen=True)
class Feed:
    kind: str
    names: tuple[str, ...]  # category path, or (tag,), (author,), () for the site
    path: str  # directory path with trailing '/', e.g. '/categories/金融/'
    articles: tuple[int, ...]  # indices into Catalog.articles, newest first
    children: tuple[str, ...] = ()  # paths of child category feeds

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else ""

    @property
    def depth(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Catalog:
    articles: tuple[Article, ...]
    site: Feed
    categories: tuple[Feed, ...]  # depth-first, children after their parent
    tags: tuple[Feed, ...]
    authors: tuple[Feed, ...]
    article_feeds: tuple[tuple[str, ...], ...]  # per article: paths of its category feeds (deepest of each hierarchy)
    problems: tuple[Problem, ...] = ()
    by_path: dict[str, Feed] = field(default_factory=dict, compare=False)

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return (self.site, *self.categories, *self.tags, *self.authors)

    def top_categories(self) -> tuple[Feed, ...]:
        return tuple(f for f in self.categories if f.depth == 1)


class _Slugger:
    """Unique slugs among siblings, assigned in name order so they never shuffle."""

    def __init__(self, slug_map: dict[str, str], what: str):
        self.slug_map = slug_map
        self.what = what
        self.problems: list[Problem] = []

    def assign(self, names: list[str], where: str) -> dict[str, str]:
        taken: dict[str, str] = {}
        out: dict[str, str] = {}
        for name in sorted(names):
            base = self.slug_map.get(name) or slugify(name)
            slug = base
            n = 2
            while slug.casefold() in taken:
                slug = f"{base}-{n}"
                n += 1
            if slug != base:
                self.problems.append(
                    Problem(
                        "config",
                        None,
                        WARNING,
                        f"{self.what} {name!r}{where} has the same slug {base!r} as {taken[base.casefold()]!r}: published as {slug!r}",
                    )
                )
            taken[slug.casefold()] = name
            out[name] = slug
        return out


def build_catalog(articles: list[Article], slug_map: dict[str, str] | None = None) -> Catalog:
    slug_map = slug_map or {}
    ordered = tuple(sorted(articles, key=lambda a: a.sort_key))

    # category tree: node key = tuple of names from the root. Members are
    # collected in index order, so each list comes out sorted; an article
    # reaching a node twice (two hierarchies with a common root) is the
    # list's last entry at that moment.
    members: dict[tuple[str, ...], list[int]] = {}
    kids: dict[tuple[str, ...], set[str]] = {(): set()}
    leaf_nodes: list[tuple[tuple[str, ...], ...]] = []
    for index, article in enumerate(ordered):
        for hierarchy in article.categories:
            for depth in range(1, len(hierarchy) + 1):
                node = hierarchy[:depth]
                listed = members.get(node)
                if listed is None:
                    members[node] = [index]
                    kids.setdefault(node[:-1], set()).add(node[-1])
                    kids.setdefault(node, set())
                elif listed[-1] != index:
                    listed.append(index)
        leaf_nodes.append(article.categories)

    slugger = _Slugger(slug_map, "category")
    node_path: dict[tuple[str, ...], str] = {(): "/categories/"}
    categories: list[Feed] = []

    def visit(node: tuple[str, ...]) -> None:
        where = f" under {' › '.join(node)}" if node else ""
        slugs = slugger.assign(list(kids.get(node, ())), where)
        for name in sorted(kids.get(node, ())):
            child = (*node, name)
            node_path[child] = node_path[node] + slugs[name] + "/"
            position = len(categories)
            categories.append(None)  # type: ignore[arg-type]  # placeholder keeps parent before children
            visit(child)
            categories[position] = Feed(
                kind=KIND_CATEGORY,
                names=child,
                path=node_path[child],
                articles=tuple(members[child]),
                children=tuple(node_path[(*child, n)] for n in sorted(kids.get(child, ()))),
            )

    visit(())

    def flat_feeds(kind: str, prefix: str, keyed: dict[str, list[int]], what: str) -> tuple[list[Feed], list[Problem]]:
        flat_slugger = _Slugger(slug_map if kind == KIND_TAG else {}, what)
        slugs = flat_slugger.assign(list(keyed), "")
        feeds = [
            Feed(kind=kind, names=(name,), path=f"{prefix}{slugs[name]}/", articles=tuple(keyed[name]))
            for name in sorted(keyed)
        ]
        return feeds, flat_slugger.problems

    # in index order, as above (a tag listed twice is one membership)
    tag_members: dict[str, list[int]] = {}
    author_members: dict[str, list[int]] = {}
    for index, article in enumerate(ordered):
        for tag in article.tags:
            listed = tag_members.setdefault(tag, [])
            if not listed or listed[-1] != index:
                listed.append(index)
        if article.author:
            author_members.setdefault(article.author, []).append(index)
    tags, tag_problems = flat_feeds(KIND_TAG, "/tags/", tag_members, "tag")
    authors, author_problems = flat_feeds(KIND_AUTHOR, "/authors/", author_members, "author")

    site = Feed(kind=KIND_SITE, names=(), path="/", articles=tuple(range(len(ordered))), children=tuple(f.path for f in categories if f.depth == 1))
    article_feeds = tuple(tuple(node_path[leaf] for leaf in leaves) for leaves in leaf_nodes)
    catalog = Catalog(
        articles=ordered,
        site=site,
        categories=tuple(categories),
        tags=tuple(tags),
        authors=tuple(authors),
        article_feeds=article_feeds,
        problems=tuple(slugger.problems + tag_problems + author_problems),
    )
    catalog.by_path.update({feed.path: feed for feed in catalog.feeds})
    return catalog


def category_chain(catalog: Catalog, path: str) -> list[Feed]:
    """The feeds from the top category down to `path`."""
    chain = []
    parts = path.strip("/").split("/")
    for depth in range(2, len(parts) + 1):
        feed = catalog.by_path.get("/" + "/".join(parts[:depth]) + "/")
        if feed is not None:
            chain.append(feed)
    return chain
