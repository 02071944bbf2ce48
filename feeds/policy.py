"""The HTML policy both sanitizer engines enforce, and the way to get one.

What is allowed (tags, attributes, URL protocols), what is removed with its
content (scripts, styles, hidden elements, the configured drop selectors),
how URLs are made absolute and lazy images promoted. The engines live in
their own modules (``sanitize`` for bleach, ``sanitize_nh3`` for nh3) and
are imported only by `get_sanitizer`: reading a config, checking whether a
build is up to date and serving never load a parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from .text import xml_safe

ALLOWED_TAGS = frozenset(
    """a abbr acronym b bdi bdo blockquote br caption cite code col colgroup dd del details dfn div dl dt
    em figcaption figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q rp rt ruby s samp small
    span strong sub summary sup table tbody td tfoot th thead tr u ul var wbr video audio source
    iframe""".split()
)

ALLOWED_ATTRIBUTES = {
    "*": ["title", "lang", "dir"],
    "a": ["href", "title", "rel"],
    "abbr": ["title"],
    "img": ["src", "alt", "title", "width", "height", "referrerpolicy"],
    "video": ["src", "poster", "controls", "width", "height", "preload", "loop", "muted", "playsinline"],
    "audio": ["src", "controls", "preload", "loop"],
    "source": ["src", "type"],
    "iframe": ["src", "width", "height", "allowfullscreen", "frameborder", "sandbox", "referrerpolicy"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan", "scope"],
    "col": ["span"],
    "colgroup": ["span"],
    "ol": ["start", "reversed"],
    "code": ["class"],
    "blockquote": ["cite"],
    "q": ["cite"],
    "del": ["cite"],
    "ins": ["cite"],
}

ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})

# Removed together with everything inside them.
DROP_WITH_CONTENT = frozenset(
    """script style noscript template object embed applet form iframe frame frameset svg math
    button select textarea input head title meta link base param canvas dialog""".split()
)

# Seen in the wild as the real address of a lazily loaded image, best first.
LAZY_SRC_ATTRIBUTES = (
    "data-original-src",
    "data-original",
    "data-src",
    "data-lazy-src",
    "data-actualsrc",
    "data-url",
    "file",
    "zoomfile",
)

URL_ATTRIBUTES = frozenset({"href", "src", "poster", "cite"})
_PLACEHOLDER_FILE = re.compile(r"(?:^|/)(?:none|blank|grey|gray|spacer|loading|lazy|placeholder|pixel)[^/]*\.(?:gif|png|svg)$", re.I)
_HIDING_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\s*(?:!important)?\s*(?:;|$)", re.I)
BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr li ol p pre section table tbody td th thead tr ul video audio img".split()
)
EMPTY_DROPPABLE = frozenset({"p", "div", "figcaption", "span", "strong", "b", "em", "i", "font", "u", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote"})
CONTENT_TAGS = frozenset({"img", "video", "audio", "iframe", "hr", "source"})
BREAKING_SPACE = re.compile(r"[ \t\r\f]*\n[ \t\r\f\n]*")
SPACE_RUN = re.compile(r"[ \t\r\f]{2,}")
_PRE_BLOCK = re.compile(r"(<pre\b.*?</pre>)", re.S | re.I)
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def squeeze_blank_lines(markup: str) -> str:
    """Runs of blank lines become one line break, except inside <pre>."""
    if _BLANK_LINES.search(markup) is None:
        return markup  # a search for its line break is fast; splitting at <pre> (case-blind) reads every character
    parts = _PRE_BLOCK.split(markup)
    return "".join(part if i % 2 else _BLANK_LINES.sub("\n", part) for i, part in enumerate(parts))


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class SimpleSelector:
    tag: str | None
    ids: tuple[str, ...]
    classes: tuple[str, ...]
    attrs: tuple[tuple[str, str | None, str | None], ...]  # (name, op, value)

    def matches(self, tag: str, attrs: dict[str, str]) -> bool:
        if self.tag is not None and self.tag != tag:
            return False
        if self.ids and attrs.get("id") not in self.ids:
            return False
        if self.classes:
            have = set(attrs.get("class", "").split())
            if not all(c in have for c in self.classes):
                return False
        for name, op, value in self.attrs:
            if name not in attrs:
                return False
            actual = attrs[name]
            if op is None:
                continue
            if op == "=" and actual != value:
                return False
            if op == "~=" and value not in actual.split():
                return False
            if op == "^=" and not actual.startswith(value):
                return False
            if op == "$=" and not actual.endswith(value):
                return False
            if op == "*=" and value not in actual:
                return False
        return True


_COMPOUND = re.compile(
    r"""(?P<tag>[a-zA-Z][\w-]*|\*)?(?P<rest>(?:\#[\w-]+|\.[\w-]+|\[\s*[\w-]+\s*(?:[~^$*]?=\s*(?:"[^"]*"|'[^']*'|[^\]\s]+)\s*)?\])*)$"""
)
_PART = re.compile(r"""\#(?P<id>[\w-]+)|\.(?P<cls>[\w-]+)|\[\s*(?P<name>[\w-]+)\s*(?:(?P<op>[~^$*]?=)\s*(?:"(?P<v1>[^"]*)"|'(?P<v2>[^']*)'|(?P<v3>[^\]\s]+))\s*)?\]""")


def parse_selector(text: str) -> tuple[tuple[str, SimpleSelector], ...]:
    """A CSS selector of compound selectors joined by ' ' or '>'.

    Returns ((combinator, compound), ...) with the combinator that links each
    compound to the one before it ('' for the first).
    """
    tokens = re.split(r"\s*(>)\s*|\s+", text.strip())
    tokens = [t for t in tokens if t]
    if not tokens or tokens[0] == ">" or tokens[-1] == ">":
        raise SelectorError("expected a selector such as .ad, div.qr or #footer a")
    out: list[tuple[str, SimpleSelector]] = []
    combinator = ""
    for token in tokens:
        if token == ">":
            if combinator == ">":
                raise SelectorError("two '>' in a row")
            combinator = ">"
            continue
        match = _COMPOUND.match(token)
        if not match or not token:
            raise SelectorError(f"unsupported selector part {token!r} (tag, #id, .class, [attr] and [attr=value] are)")
        tag = match.group("tag")
        ids, classes, attrs = [], [], []
        for part in _PART.finditer(match.group("rest")):
            if part.group("id"):
                ids.append(part.group("id"))
            elif part.group("cls"):
                classes.append(part.group("cls"))
            else:
                value = part.group("v1") if part.group("v1") is not None else part.group("v2") if part.group("v2") is not None else part.group("v3")
                attrs.append((part.group("name").lower(), part.group("op"), value))
        out.append((combinator or (" " if out else ""), SimpleSelector(None if tag in (None, "*") else tag.lower(), tuple(ids), tuple(classes), tuple(attrs))))
        combinator = ""
    return tuple(out)


def selector_matches(selector: tuple[tuple[str, SimpleSelector], ...], stack: list[tuple[str, dict[str, str]]]) -> bool:
    """Does the element at the top of `stack` match? (stack = ancestors + element)"""
    index = len(stack) - 1
    position = len(selector) - 1
    if not selector[position][1].matches(*stack[index]):
        return False
    while position > 0:
        combinator = selector[position][0]
        position -= 1
        compound = selector[position][1]
        if combinator == ">":
            index -= 1
            if index < 0 or not compound.matches(*stack[index]):
                return False
        else:
            index -= 1
            while index >= 0 and not compound.matches(*stack[index]):
                index -= 1
            if index < 0:
                return False
    return True


@dataclass(frozen=True)
class Policy:
    drop_selectors: tuple[str, ...] = (".appendQr_wrap",)
    iframe_hosts: tuple[str, ...] = ()
    placeholder_image_hosts: tuple[str, ...] = ("picsum.photos",)

    @property
    def selectors(self):
        return tuple(parse_selector(s) for s in self.drop_selectors)


@dataclass(frozen=True)
class CleanBody:
    html: str
    text: str  # plain text, block boundaries as newlines
    first_image: str | None
    dropped_images: frozenset[str] = frozenset()  # images that were only in removed blocks (ads, QR codes)
    notes: tuple[str, ...] = ()  # what the author should know (reported as warnings)


MAX_DEPTH = 200  # deeper nesting is flattened: real articles stay far below
_TAG_SCAN = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)[^>]*?(/?)>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# End tags HTML lets authors omit: a new <li> or <p> closes the open one,
# so these never nest on their own and do not count as depth.
_OPTIONAL_END = frozenset("p li dt dd tr td th thead tbody tfoot option optgroup rt rp colgroup caption".split())


def limit_depth(body: str, limit: int = MAX_DEPTH) -> tuple[str, int]:
    """Remove the tags (not the text) nested deeper than `limit`.

    HTML parsers spend time quadratic in nesting depth (html5lib needs
    minutes for 20,000 levels); flattening first keeps every word.
    Returns (body, deepest level seen); the level is 0 when the body has
    too few opening tags to nest deeper than `limit`, and is not measured.
    """
    if body.count("<") - body.count("</") <= limit:
        return body, 0  # not enough opening tags to nest deeper than limit
    depth = deepest = 0
    cuts: list[tuple[int, int]] = []
    for match in _TAG_SCAN.finditer(body):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name in _VOID or name in _OPTIONAL_END or self_closing:
            continue
        if closing:
            if depth > limit:
                cuts.append(match.span())
            depth = max(depth - 1, 0)
        else:
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                cuts.append(match.span())
    if deepest <= limit:
        return body, deepest
    pieces = []
    position = 0
    for start, end in cuts:
        pieces.append(body[position:start])
        position = end
    pieces.append(body[position:])
    return "".join(pieces), deepest


def host_matches(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith(dot_h) for h, dot_h in _host_patterns(allowed))


@lru_cache(maxsize=16)
def _host_patterns(allowed: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(host, "." + host) for each allowed host, lowercased and without a leading dot."""
    hosts = [a.lower().lstrip(".") for a in allowed]
    return tuple((h, "." + h) for h in hosts)


def iframe_allowed(src: str, base_url: str, hosts: tuple[str, ...]) -> bool:
    """An https URL whose host is allowed, read the strict way.

    Browsers (WHATWG URL) treat '\\' like '/' and differ from urllib on
    userinfo and odd characters, so anything that could be read two ways
    is refused rather than interpreted.
    """
    src = src.strip()
    if any(ch in src for ch in "\\@") or any(ch.isspace() or ord(ch) < 0x20 for ch in src):
        return False
    url = absolutize(src, base_url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or port not in (None, 443) or not re.fullmatch(r"[a-z0-9.-]+", host):
        return False
    return host_matches(host, hosts)


# An absolute http(s) URL that urljoin gives back unchanged whatever the base:
# a lowercase scheme, a host, and no part that urlsplit/urlunsplit would
# drop or rewrite (empty "?" or "#", ";" parameters, tab/CR/LF, controls).
_UNCHANGED_BY_URLJOIN = re.compile(r"https?://[^/?#;\x00-\x20]+(?:/[^?#;\x00-\x20]*)?(?:\?[^#\x00-\x20]+)?(?:#[^\x00-\x20]+)?")


def absolutize(value: str, base_url: str) -> str:
    value = value.strip()
    if _UNCHANGED_BY_URLJOIN.fullmatch(value):
        return value  # most URLs in scraped bodies; urljoin costs microseconds
    if value.startswith("//"):
        return "https:" + value
    try:
        return urljoin(base_url, value)
    except ValueError:  # e.g. an invalid IPv6 host: leave it to bleach, which drops it
        return value


# An http(s) or scheme-relative URL with a plain ASCII host (no userinfo,
# port or brackets) and no character urlsplit would strip or read otherwise:
# its host and path read straight off are urlsplit's (which costs about 10 µs,
# on every image of every post). Anything else goes through urlsplit.
_PLAIN_URL = re.compile(r"(?:[hH][tT][tT][pP][sS]?:)?//([A-Za-z0-9._-]+)((?:/[^?#\x00-\x20\\]*)?)")


def is_placeholder_src(src: str | None, policy: Policy) -> bool:
    if not src or not src.strip():
        return True
    src = src.strip()
    if src.lower().startswith("data:"):
        return True
    plain = _PLAIN_URL.match(src)
    if plain is not None and (plain.end() == len(src) or src[plain.end()] in "?#"):
        host, path = plain.group(1), plain.group(2)
    else:
        try:
            parts = urlsplit(src if not src.startswith("//") else "https:" + src)
        except ValueError:
            return True
        host, path = parts.hostname, parts.path
    if host and policy.placeholder_image_hosts and host_matches(host, policy.placeholder_image_hosts):
        return True
    return bool(_PLACEHOLDER_FILE.search(path))


def hidden_by_attributes(name: str, attrs) -> bool:
    """Marked hidden (attribute, aria on a block, or an inline style): never shown, so never published."""
    if "hidden" in attrs:
        return True
    if attrs.get("aria-hidden") == "true" and name in ("div", "section", "aside"):
        return True
    style = attrs.get("style")
    return bool(style and _HIDING_STYLE.search(style))


class DropRule:
    """Which elements are removed together with everything inside them (both engines).

    `drops(name, attrs, ancestors, base_url)`: `attrs` maps attribute names
    to values (a dict, or an lxml element's attrib); `ancestors` is the open
    elements as (name, attrs), root first and this element last, kept by
    the walks only when `needs_ancestors` (a selector has a combinator) and
    read only when a drop selector can match here.
    """

    def __init__(self, policy: Policy):
        self.policy = policy
        # What the element a selector removes must have: its tag (None = any)
        # and attribute names; most elements are ruled out without matching.
        self.subjects: list[tuple[str | None, tuple[str, ...], tuple]] = []
        for selector in policy.selectors:
            subject = selector[-1][1]
            required = (("id",) if subject.ids else ()) + (("class",) if subject.classes else ()) + tuple(name for name, _op, _value in subject.attrs)
            self.subjects.append((subject.tag, required, selector))
        self.bare_subjects = [entry for entry in self.subjects if not entry[1]]  # those an element without attributes can match
        # a selector of one compound looks at the element alone: without
        # combinators the walks need not keep the open elements at all
        self.needs_ancestors = any(len(selector) > 1 for selector in policy.selectors)

    def drops(self, name: str, attrs, ancestors, base_url: str) -> bool:
        if name in DROP_WITH_CONTENT:
            if name == "iframe" and self.policy.iframe_hosts:
                return not iframe_allowed(attrs.get("src", ""), base_url, self.policy.iframe_hosts)
            return True
        if not attrs:
            subjects = self.bare_subjects
        else:
            if hidden_by_attributes(name, attrs):
                return True
            subjects = self.subjects
        for tag, required, selector in subjects:
            if tag is not None and tag != name:
                continue
            for attr in required:
                if attr not in attrs:
                    break
            else:
                if selector_matches(selector, ancestors if self.needs_ancestors else ((name, attrs),)):
                    return True
        return False


def prepare_body(body: str) -> tuple[str, tuple[str, ...]]:
    """What both engines do first: XML-forbidden characters out, depth limited."""
    body = xml_safe(body)
    body, deepest = limit_depth(body)
    if deepest > MAX_DEPTH:
        return body, (f"body nests HTML {deepest} levels deep: tags below level {MAX_DEPTH} were removed, their text kept",)
    return body, ()


@lru_cache(maxsize=4)
def get_sanitizer(engine: str, policy: Policy):
    """One sanitizer per process and policy (building one costs a few ms)."""
    if engine in ("bleach", "bleach-html5lib"):
        from .sanitize import BleachSanitizer

        return BleachSanitizer(policy, lexbor=engine == "bleach")
    if engine == "nh3":
        from .sanitize_nh3 import Nh3Sanitizer

        return Nh3Sanitizer(policy)
    raise ValueError(f"unknown sanitizer engine {engine!r}")
