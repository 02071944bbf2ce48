"""The HTML policy: scraped bodies in, safe and tidy HTML out.

One html5lib parse per body. The token stream goes through three stages:

1. ``StructureFilter`` (ours) removes whole elements *with their content*
   (script, style, hidden elements, ad blocks …), promotes lazy-image
   attributes and makes every URL absolute;
2. bleach's ``BleachSanitizerFilter`` enforces the allowlist of tags,
   attributes and URL protocols — the security boundary is bleach's;
3. ``TidyFilter`` (ours) drops empty paragraphs and blank-line runs and
   records the plain text and the first image for summaries.

The parser is told about the to-be-removed tags so that it builds them as
elements (with script/style content as raw text) instead of bleach's usual
tokenizer-level stripping, which would keep a stripped <style>'s CSS as text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from bleach import html5lib_shim
from bleach._vendor.html5lib import _inputstream
from bleach.sanitizer import BleachSanitizerFilter

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
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr li ol p pre section table tbody td th thead tr ul video audio img".split()
)
_EMPTY_DROPPABLE = frozenset({"p", "div", "figcaption", "span", "strong", "b", "em", "i", "font", "u", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote"})
_CONTENT_TAGS = frozenset({"img", "video", "audio", "iframe", "hr", "source"})
_BREAKING_SPACE = re.compile(r"[ \t\r\f]*\n[ \t\r\f\n]*")
_SPACE_RUN = re.compile(r"[ \t\r\f]{2,}")
_PRE_BLOCK = re.compile(r"(<pre\b.*?</pre>)", re.S | re.I)
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def squeeze_blank_lines(markup: str) -> str:
    """Runs of blank lines become one line break, except inside <pre>."""
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
    Returns (body, deepest level seen).
    """
    if body.count("<") < limit:
        return body, 0
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
    return any(host == h or host.endswith("." + h) for h in (a.lower().lstrip(".") for a in allowed))


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


def absolutize(value: str, base_url: str) -> str:
    value = value.strip()
    if value.startswith("//"):
        return "https:" + value
    try:
        return urljoin(base_url, value)
    except ValueError:  # e.g. an invalid IPv6 host: leave it to bleach, which drops it
        return value


def _attr_dict(token) -> dict[str, str]:
    return {name: value for (_ns, name), value in token.get("data", {}).items()}


def _is_placeholder_src(src: str | None, policy: Policy) -> bool:
    if not src or not src.strip():
        return True
    src = src.strip()
    if src.lower().startswith("data:"):
        return True
    try:
        parts = urlsplit(src if not src.startswith("//") else "https:" + src)
    except ValueError:
        return True
    if parts.hostname and host_matches(parts.hostname, policy.placeholder_image_hosts):
        return True
    return bool(_PLACEHOLDER_FILE.search(parts.path))


def drops_with_content(name: str, attrs, stack, policy: Policy, selectors, base_url: str) -> bool:
    """Is this element removed together with everything inside it? (both engines)"""
    if name in DROP_WITH_CONTENT:
        if name == "iframe" and policy.iframe_hosts:
            return not iframe_allowed(attrs.get("src", ""), base_url, policy.iframe_hosts)
        return True
    if attrs:
        if "hidden" in attrs:
            return True
        if attrs.get("aria-hidden") == "true" and name in ("div", "section", "aside"):
            return True
        style = attrs.get("style")
        if style and _HIDING_STYLE.search(style):
            return True
    return bool(selectors) and any(selector_matches(sel, stack) for sel in selectors)


class StructureFilter(html5lib_shim.Filter):
    """Removes elements with their content and rewrites URLs; see module doc."""

    def __init__(self, source, policy: Policy, selectors, base_url: str):
        super().__init__(source)
        self.policy = policy
        self.selectors = selectors
        self.base_url = base_url
        self.dropped_images: set[str] = set()  # image URLs inside removed elements

    def _drop(self, name: str, attrs: dict[str, str], stack) -> bool:
        return drops_with_content(name, attrs, stack, self.policy, self.selectors, self.base_url)

    def _rewrite(self, token, name: str) -> None:
        data = token.get("data")
        if not data:
            return
        attrs = {key[1]: key for key in data}
        if name in ("img", "video", "source", "audio"):
            src = data.get(attrs["src"]) if "src" in attrs else None
            if _is_placeholder_src(src, self.policy):
                for lazy in LAZY_SRC_ATTRIBUTES:
                    if lazy in attrs and data[attrs[lazy]].strip() and not data[attrs[lazy]].strip().lower().startswith("data:"):
                        data[(None, "src")] = data[attrs[lazy]]
                        attrs["src"] = (None, "src")
                        break
                else:
                    srcset = data.get(attrs["srcset"], "") if "srcset" in attrs else ""
                    first = srcset.strip().split(",")[0].strip().split(" ")[0] if srcset.strip() else ""
                    if first:
                        data[(None, "src")] = first
                        attrs["src"] = (None, "src")
        for attr in URL_ATTRIBUTES:
            if attr in attrs:
                data[attrs[attr]] = absolutize(data[attrs[attr]], self.base_url)
        if name == "iframe":
            data[(None, "sandbox")] = "allow-scripts allow-same-origin allow-popups"
        if name == "a" and "href" in attrs:
            data[(None, "rel")] = "noopener noreferrer nofollow"

    def _remember_dropped(self, token) -> None:
        for name, value in _attr_dict(token).items():
            if name == "src" or name in LAZY_SRC_ATTRIBUTES:
                self.dropped_images.add(absolutize(value, self.base_url))

    def __iter__(self):
        stack: list[tuple[str, dict[str, str]]] = []
        skipping = 0  # depth inside a removed element
        for token in super().__iter__():
            kind = token["type"]
            if kind == "Comment" or kind == "Doctype":
                continue
            if kind == "StartTag":
                name = token["name"]
                attrs = _attr_dict(token)
                stack.append((name, attrs))
                if skipping:
                    skipping += 1
                    continue
                if self._drop(name, attrs, stack):
                    skipping = 1
                    continue
                self._rewrite(token, name)
                yield token
            elif kind == "EndTag":
                if stack:
                    stack.pop()
                if skipping:
                    skipping -= 1
                    continue
                yield token
            elif kind == "EmptyTag":
                if skipping:
                    if token["name"] == "img":
                        self._remember_dropped(token)
                    continue
                name = token["name"]
                attrs = _attr_dict(token)
                stack.append((name, attrs))
                dropped = self._drop(name, attrs, stack)
                stack.pop()
                if dropped:
                    if name == "img":
                        self._remember_dropped(token)
                    continue
                self._rewrite(token, name)
                yield token
            else:
                if not skipping:
                    yield token


class TidyFilter(html5lib_shim.Filter):
    """Drops empty paragraphs and blank runs; records text and first image."""

    def __init__(self, source):
        super().__init__(source)
        self.text_parts: list[str] = []
        self.first_image: str | None = None

    def _note(self, token) -> None:
        kind = token["type"]
        if kind in ("Characters", "SpaceCharacters"):
            self.text_parts.append(token["data"])
        elif kind == "Entity":
            self.text_parts.append(html.unescape(f"&{token['name']};"))
        elif kind in ("StartTag", "EndTag", "EmptyTag"):
            name = token["name"]
            if name in _BLOCK_TAGS:
                self.text_parts.append("\n")
            if name == "img" and self.first_image is None and kind != "EndTag":
                src = _attr_dict(token).get("src")
                if src and src.startswith(("http://", "https://")):
                    self.first_image = src

    @staticmethod
    def _is_content(token) -> bool:
        kind = token["type"]
        if kind in ("EmptyTag", "StartTag"):
            return token["name"] in _CONTENT_TAGS
        if kind == "Characters":
            return bool(token["data"].strip(" \t\n\r\f\u00a0\u3000"))
        if kind == "Entity":
            return token["name"] not in ("nbsp", "ensp", "emsp", "thinsp")
        return False

    def __iter__(self):
        # frames of possibly-empty elements: [tokens, has_content, open tags inside]
        frames: list[list] = []
        for token in self._merge_space(super().__iter__()):
            kind = token["type"]
            if kind == "StartTag" and token["name"] in _EMPTY_DROPPABLE:
                frames.append([[token], False, 0])
                continue
            if not frames:
                yield self._emit(token)
                continue
            frame = frames[-1]
            frame[0].append(token)
            if self._is_content(token):
                frame[1] = True
            if kind == "StartTag":
                frame[2] += 1
            elif kind == "EndTag":
                if frame[2]:
                    frame[2] -= 1
                    continue
                frames.pop()  # this EndTag closes the frame's element
                if not frame[1]:
                    continue  # nothing visible inside: drop it whole
                if frames:
                    frames[-1][0].extend(frame[0])
                    frames[-1][1] = True
                else:
                    for held in frame[0]:
                        yield self._emit(held)
        for frame in frames:  # unbalanced input cannot happen with html5lib; be safe
            for held in frame[0]:
                yield self._emit(held)

    def _emit(self, token):
        self._note(token)
        return token

    @staticmethod
    def _merge_space(tokens):
        """Collapse whitespace outside <pre>, across token boundaries too."""
        pre_depth = 0
        space = ""
        for token in tokens:
            kind = token["type"]
            if kind in ("Characters", "SpaceCharacters") and not pre_depth:
                data = _BREAKING_SPACE.sub("\n", token["data"])
                data = _SPACE_RUN.sub(" ", data)
                core = data.strip(" \t\n\r\f")
                if not core:
                    space += data
                    continue
                lead = data[: len(data) - len(data.lstrip(" \t\n\r\f"))]
                trail = data[len(data.rstrip(" \t\n\r\f")) :]
                if space or lead:
                    yield {"type": "SpaceCharacters", "data": "\n" if "\n" in space + lead else " "}
                space = trail
                yield {"type": "Characters", "data": core}
                continue
            if space:
                yield {"type": "SpaceCharacters", "data": "\n" if "\n" in space else " "}
                space = ""
            if kind == "StartTag" and token["name"] == "pre":
                pre_depth += 1
            elif kind == "EndTag" and token["name"] == "pre":
                pre_depth -= 1
            yield token
        if space:
            yield {"type": "SpaceCharacters", "data": "\n" if "\n" in space else " "}

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def prepare_body(body: str) -> tuple[str, tuple[str, ...]]:
    """What both engines do first: XML-forbidden characters out, depth limited."""
    body = xml_safe(body)
    body, deepest = limit_depth(body)
    if deepest > MAX_DEPTH:
        return body, (f"body nests HTML {deepest} levels deep: tags below level {MAX_DEPTH} were removed, their text kept",)
    return body, ()


# A cheap superset of html5lib's invalid-codepoint class: one range for every
# non-BMP character instead of 32 single code points, which sre tests one by
# one for each character of every body (a third of a millisecond a post).
_MAYBE_INVALID_CODEPOINT = re.compile("[\x01-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\U0001fffe-\U0010ffff]")


class _TagMemory:
    """bleach's InputStreamWithMemory, without a Python call per character.

    bleach remembers the text since the last '<' so that a malformed tag can
    be given back as text. Its wrapper appends every character the tokenizer
    reads to a list; here the tokenizer reads the html5lib stream directly and
    the same text is cut out of the stream's chunk only when it is asked for.
    The remembered text is `kept` plus chunk[mark:chunkOffset]; ungets and
    chunk changes (both rare) fold the pending part into `kept`.
    """

    def __init__(self, inner):
        self._inner = inner
        self.char = inner.char
        self.charsUntil = inner.charsUntil
        self.position = inner.position
        self.errors = inner.errors
        self._kept = ""
        self._mark = 0
        read_chunk = inner.readChunk

        def readChunk(chunkSize=None):
            # only called once the rest of the chunk has been consumed
            self._kept += inner.chunk[self._mark :]
            self._mark = 0
            return read_chunk(chunkSize)

        inner.readChunk = readChunk
        count_invalid = inner.characterErrorsUCS4

        def report(data):
            if _MAYBE_INVALID_CODEPOINT.search(data):
                count_invalid(data)

        if inner.reportCharacterErrors == count_invalid:
            inner.reportCharacterErrors = report

    def reset(self):
        inner = self._inner
        self._kept += inner.chunk[self._mark : inner.chunkOffset]
        self._mark = 0
        inner.reset()
        self.errors = inner.errors

    @property
    def charEncoding(self):
        return self._inner.charEncoding

    @property
    def changeEncoding(self):
        return self._inner.changeEncoding

    def unget(self, char):
        inner = self._inner
        remembered = self._kept + inner.chunk[self._mark : inner.chunkOffset]
        inner.unget(char)
        # bleach drops the last remembered character even for EOF
        self._kept = remembered[:-1]
        self._mark = inner.chunkOffset

    def start_tag(self):
        self._kept = "<"
        self._mark = self._inner.chunkOffset

    def get_tag(self):
        inner = self._inner
        return self._kept + inner.chunk[self._mark : inner.chunkOffset]


class _Parser(html5lib_shim.BleachHTMLParser):
    """bleach's parser with a cheaper input stream (same tokens)."""

    def reset(self):
        super().reset()
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is not None and not isinstance(tokenizer.stream, _TagMemory):
            tokenizer.stream = _TagMemory(tokenizer.stream._inner_stream)


class BleachSanitizer:
    """The policy on bleach: one parser and serializer, reused for every body."""

    engine = "bleach"

    def __init__(self, policy: Policy):
        self.policy = policy
        self.selectors = policy.selectors
        # the parser must know every tag StructureFilter acts on (see module doc)
        parse_tags = ALLOWED_TAGS | DROP_WITH_CONTENT | {"font", "center", "section", "article", "header", "footer", "aside", "nav", "main", "address", "label", "picture"}
        self.parser = _Parser(
            tags=parse_tags, strip=True, consume_entities=False, namespaceHTMLElements=False
        )
        self.walker = html5lib_shim.getTreeWalker("etree")
        self.serializer = html5lib_shim.BleachHTMLSerializer(
            quote_attr_values="always",
            omit_optional_tags=False,
            escape_lt_in_attrs=True,
            resolve_entities=False,
            sanitize=False,
            alphabetical_attributes=False,
        )

    def clean(self, body: str, base_url: str) -> CleanBody:
        body, notes = prepare_body(body)
        if not body.strip():
            return CleanBody("", "", None)
        dom = self.parser.parseFragment(body)
        structure = StructureFilter(self.walker(dom), self.policy, self.selectors, base_url)
        stream = BleachSanitizerFilter(
            source=structure,
            allowed_tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            allowed_protocols=ALLOWED_PROTOCOLS,
            strip_disallowed_tags=True,
            strip_html_comments=True,
        )
        tidy = TidyFilter(stream)
        out = self.serializer.render(tidy)
        return CleanBody(squeeze_blank_lines(xml_safe(out)).strip(), tidy.text, tidy.first_image, frozenset(structure.dropped_images), notes)


@lru_cache(maxsize=4)
def get_sanitizer(engine: str, policy: Policy):
    """One sanitizer per process and policy (building one costs a few ms)."""
    if engine == "bleach":
        return BleachSanitizer(policy)
    if engine == "nh3":
        from .sanitize_nh3 import Nh3Sanitizer

        return Nh3Sanitizer(policy)
    raise ValueError(f"unknown sanitizer engine {engine!r}")
