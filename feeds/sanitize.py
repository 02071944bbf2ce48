"""The bleach engine: scraped bodies in, safe and tidy HTML out (the policy is in ``policy``).

One parse per body (lexbor through selectolax by default, bleach's own
html5lib parser with engine "bleach-html5lib"), then one pass over the tree
(``_Pass``) that hands every token through three stages, in this order:

1. structure (ours) removes whole elements *with their content* (script,
   style, hidden elements, ad blocks …) without walking into them, promotes
   lazy-image attributes and makes every URL absolute;
2. bleach's ``BleachSanitizerFilter.sanitize_token`` enforces the allowlist
   of tags, attributes and URL protocols: the security boundary is bleach's;
3. tidy (ours) drops empty paragraphs and blank-line runs.

The final tokens are written out in one more loop (``serialize``), which
writes what bleach's serializer writes and reads off the plain text and the
first image for summaries on the way.

The html5lib parser is told about the to-be-removed tags so that it builds
them as elements (with script/style content as raw text) instead of bleach's
usual tokenizer-level stripping, which would keep a stripped <style>'s CSS as
text. lexbor builds every element, as a browser does.
"""

from __future__ import annotations

import html
import re

from bleach import html5lib_shim
from bleach._vendor.html5lib import constants as html5lib_constants
from bleach.sanitizer import BleachSanitizerFilter
from selectolax.lexbor import LexborDocumentOptions, LexborHTMLParser

from .policy import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_PROTOCOLS,
    ALLOWED_TAGS,
    BLOCK_TAGS,
    BREAKING_SPACE,
    CONTENT_TAGS,
    CleanBody,
    DROP_WITH_CONTENT,
    DropRule,
    EMPTY_DROPPABLE,
    LAZY_SRC_ATTRIBUTES,
    Policy,
    SPACE_RUN,
    URL_ATTRIBUTES,
    absolutize,
    is_placeholder_src,
    prepare_body,
    squeeze_blank_lines,
)
from .text import xml_safe

# the tree the source holds: no DOM mutation events (<selectedcontent> copying the selected <option>)
_LEXBOR_OPTIONS = LexborDocumentOptions.WO_EVENTS

# How html5lib's etree walker reads "{namespace}name" tag and attribute names.
_QUALIFIED_NAME = re.compile("{([^}]*)}(.*)")
_HTML_NAMESPACE = html5lib_constants.namespaces["html"]
_VOID_ELEMENTS = html5lib_constants.voidElements
_WALKER_SPACES = "".join(html5lib_constants.spaceCharacters)
_SPACES = " \t\n\r\f"
_NOT_VISIBLE = " \t\n\r\f\u00a0\u3000"
_BLANK_ENTITIES = frozenset({"nbsp", "ensp", "emsp", "thinsp"})
_REWRITTEN_TAGS = frozenset({"img", "video", "source", "audio", "iframe"})
_NO_ATTRIBUTES: dict[str, str] = {}  # shared, never written to


def _split_name(name: str) -> tuple[str | None, str]:
    if name[:1] == "{":
        match = _QUALIFIED_NAME.match(name)
        if match:
            return match.group(1), match.group(2)
    return None, name


def _token_attributes(attrib) -> dict:
    """An element's attributes keyed (namespace, name), as html5lib's walker gives them."""
    data = {}
    for name, value in attrib.items():
        data[_split_name(name) if name[:1] == "{" else (None, name)] = value
    return data


def _rewrite(data: dict, name: str, policy: Policy, base_url: str) -> None:
    """Lazy images get their real src, URLs become absolute, links and frames get their rel/sandbox."""
    if not data:
        return
    attrs = {key[1]: key for key in data}
    if name in ("img", "video", "source", "audio"):
        src = data.get(attrs["src"]) if "src" in attrs else None
        if is_placeholder_src(src, policy):
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
            data[attrs[attr]] = absolutize(data[attrs[attr]], base_url)
    if name == "iframe":
        data[(None, "sandbox")] = "allow-scripts allow-same-origin allow-popups"
    if name == "a" and "href" in attrs:
        data[(None, "rel")] = "noopener noreferrer nofollow"


class _Pass:
    """One body's trip from the parsed tree to the tokens the serializer writes.

    The stages used to be three html5lib filters over html5lib's tree walker;
    each token then went through six generators, and removed elements were
    walked token by token just to be skipped. Here one loop walks the tree,
    never enters a removed element, and hands each token through the same
    stages in the same order:

    1. structure: removal with content, lazy images, absolute URLs;
    2. bleach: ``BleachSanitizerFilter.sanitize_token`` decides every tag,
       attribute and URL, then consecutive text is merged as bleach merges it;
    3. tidy: whitespace collapsed outside <pre>, empty elements held back and
       dropped.
    """

    def __init__(self, sanitizer: "BleachSanitizer", base_url: str):
        self.policy = sanitizer.policy
        self.drop_rule = sanitizer.drop_rule
        self.sanitize = sanitizer._bleach.sanitize_token
        self.base_url = base_url
        self.ancestors: list[tuple[str, dict]] = []  # only kept when a selector may need them
        self.dropped_images: set[str] = set()
        self.out: list[dict] = []
        self.frames: list[list] = []  # elements that may turn out empty: [tokens, has content, open tags inside]
        self.chars: list[str] = []  # text waiting to be merged, as bleach merges it
        self.pre_depth = 0
        self.space = ""  # whitespace seen since the last text, not yet written

    # -- stage 1: structure, while walking the tree ---------------------------

    def walk(self, root) -> None:
        keep_ancestors = self.drop_rule.needs_ancestors
        ancestors = self.ancestors
        drops = self.drop_rule.drops
        base_url = self.base_url
        tag_token = self.tag_token
        text = self.text
        if root.text:
            text(root.text)
        stack = [(iter(root), None, None)]
        while stack:
            children, end, owner = stack[-1]
            for element in children:
                tag = element.tag
                if isinstance(tag, str) and tag != "<!DOCTYPE>":  # comments and doctypes go, their tail stays
                    namespace, name = _split_name(tag)
                    data = _token_attributes(element.attrib) if element.attrib else {}
                    attrs = {key[1]: value for key, value in data.items()} if data else _NO_ATTRIBUTES
                    void = (not namespace or namespace == _HTML_NAMESPACE) and name in _VOID_ELEMENTS
                    if keep_ancestors:
                        ancestors.append((name, attrs))
                    if drops(name, attrs, ancestors, base_url):
                        self.remember_images(element, void, name)
                        if keep_ancestors:
                            ancestors.pop()
                    else:
                        if data and (name in _REWRITTEN_TAGS or not URL_ATTRIBUTES.isdisjoint(attrs)):
                            _rewrite(data, name, self.policy, self.base_url)
                        if void:
                            tag_token({"type": "EmptyTag", "name": name, "namespace": namespace, "data": data})
                            if len(element) or element.text:
                                tag_token({"type": "SerializeError", "data": "Void element has children"})
                            if keep_ancestors:
                                ancestors.pop()
                        else:
                            tag_token({"type": "StartTag", "name": name, "namespace": namespace, "data": data})
                            end_token = {"type": "EndTag", "name": name, "namespace": namespace}
                            if element.text:
                                text(element.text)
                            if len(element):
                                stack.append((iter(element), end_token, element))
                                break
                            tag_token(end_token)
                            if keep_ancestors:
                                ancestors.pop()
                if element.tail:
                    text(element.tail)
            else:
                stack.pop()
                if owner is not None:
                    tag_token(end)
                    if keep_ancestors:
                        ancestors.pop()
                    if owner.tail:
                        text(owner.tail)

    def walk_lexbor(self, first, references: bool) -> None:
        """walk() for lexbor's tree (a fragment's first node and its siblings).

        lexbor keeps text in nodes of its own where etree has .text and
        .tail; valueless attributes read None there and "" in html5lib; every
        element is an HTML one, since the only ways into SVG or MathML
        (<svg>, <math>) are removed with their content. lexbor decodes
        character references, so with `references` (the body has "&#") a
        reference to a character XML forbids is taken out of the text again.
        """
        keep_ancestors = self.drop_rule.needs_ancestors
        ancestors = self.ancestors
        drops = self.drop_rule.drops
        base_url = self.base_url
        tag_token = self.tag_token
        text = self.text
        stack: list[tuple[dict, object]] = []  # the open elements: (end token, node)
        node = first
        while True:
            while node is not None:
                if node.is_element_node:
                    name = node.tag
                    raw = node.attributes
                    if raw:
                        attrs = {key: "" if value is None else value for key, value in raw.items()}
                        if references:
                            attrs = {key: xml_safe(value) for key, value in attrs.items()}
                        data = {(None, key): value for key, value in attrs.items()}
                    else:
                        attrs = _NO_ATTRIBUTES
                        data = {}
                    if keep_ancestors:
                        ancestors.append((name, attrs))
                    if drops(name, attrs, ancestors, base_url):
                        self.remember_lexbor_images(node, name)
                        if keep_ancestors:
                            ancestors.pop()
                    else:
                        if data and (name in _REWRITTEN_TAGS or not URL_ATTRIBUTES.isdisjoint(attrs)):
                            _rewrite(data, name, self.policy, base_url)
                        if name in _VOID_ELEMENTS:
                            tag_token({"type": "EmptyTag", "name": name, "namespace": None, "data": data})
                            if keep_ancestors:
                                ancestors.pop()
                        else:
                            tag_token({"type": "StartTag", "name": name, "namespace": None, "data": data})
                            end_token = {"type": "EndTag", "name": name, "namespace": None}
                            child = node.first_child
                            if child is not None:
                                stack.append((end_token, node))
                                node = child
                                continue
                            tag_token(end_token)
                            if keep_ancestors:
                                ancestors.pop()
                elif node.is_text_node:
                    data = node.text_content
                    if data:
                        text(xml_safe(data) if references else data, True)
                # comments go
                node = node.next
            if not stack:
                return
            end_token, owner = stack.pop()
            tag_token(end_token)
            if keep_ancestors:
                ancestors.pop()
            node = owner.next

    def remember_lexbor_images(self, node, name: str) -> None:
        if name == "img":
            images = [node]
        elif name in _VOID_ELEMENTS:
            return
        else:
            images = node.css("img")
        for image in images:
            for attr, value in image.attributes.items():
                if value and (attr == "src" or attr in LAZY_SRC_ATTRIBUTES):
                    self.dropped_images.add(absolutize(value, self.base_url))

    def remember_images(self, element, void: bool, name: str) -> None:
        """The images html5lib's walker would have shown inside a removed element."""
        if void:  # the walker never enters a void element
            if name == "img":
                self.remember(element)
            return
        todo = list(element)
        while todo:
            node = todo.pop()
            if not isinstance(node.tag, str) or node.tag == "<!DOCTYPE>":
                continue
            namespace, name = _split_name(node.tag)
            if (not namespace or namespace == _HTML_NAMESPACE) and name in _VOID_ELEMENTS:
                if name == "img":
                    self.remember(node)
                continue
            todo.extend(node)

    def remember(self, element) -> None:
        attrs = {key[1]: value for key, value in _token_attributes(element.attrib).items()}
        for name, value in attrs.items():
            if name == "src" or name in LAZY_SRC_ATTRIBUTES:
                self.dropped_images.add(absolutize(value, self.base_url))

    def text(self, data: str, decoded: bool = False) -> None:
        """Text as the walker splits it: outer whitespace apart from the rest.

        `decoded`: lexbor's text, whose character references are already
        read. bleach's check of a Characters token would take the text
        "&lt;" for a reference and have it written as "<", so such text goes
        straight to the text being merged. The check's other step, replacing
        control characters, has nothing left to do: xml_safe removed them
        all from the body and from what its references read.
        """
        middle = data.lstrip(_WALKER_SPACES)
        if len(middle) != len(data):
            self.spaces(data[: len(data) - len(middle)])
        core = middle.rstrip(_WALKER_SPACES)
        if core:
            if decoded:
                self.chars.append(core)
            else:
                self.tag_token({"type": "Characters", "data": core})
        if len(core) != len(middle):
            self.spaces(middle[len(core) :])

    # -- stage 2: bleach -------------------------------------------------------

    def tag_token(self, token: dict) -> None:
        result = self.sanitize(token)
        if not result:
            return
        chars = self.chars
        for token in result if isinstance(result, list) else (result,):
            if token["type"] == "Characters":
                chars.append(token["data"])
                continue
            if chars:
                self.tidy_text("".join(chars))
                chars.clear()
            self.tidy(token)

    def spaces(self, data: str) -> None:
        # bleach passes whitespace through untouched
        chars = self.chars
        if chars:
            self.tidy_text("".join(chars))
            chars.clear()
        if self.pre_depth:
            self.hold({"type": "SpaceCharacters", "data": data})
        else:
            # only whether pending space is there and holds a line break matters
            self.space += data

    # -- stage 3: tidy ----------------------------------------------------------

    def tidy_text(self, data: str) -> None:
        if self.pre_depth:
            self.hold({"type": "Characters", "data": data})
            return
        if "\n" in data:
            data = BREAKING_SPACE.sub("\n", data)
        data = SPACE_RUN.sub(" ", data)
        core = data.strip(_SPACES)
        if not core:
            self.space += data
            return
        lead = data[: len(data) - len(data.lstrip(_SPACES))]
        space = self.space
        if space or lead:
            self.hold({"type": "SpaceCharacters", "data": "\n" if "\n" in space or "\n" in lead else " "})
        self.space = data[len(data.rstrip(_SPACES)) :]
        self.hold({"type": "Characters", "data": core})

    def tidy(self, token: dict) -> None:
        if self.space:
            self.hold({"type": "SpaceCharacters", "data": "\n" if "\n" in self.space else " "})
            self.space = ""
        kind = token["type"]
        if kind == "StartTag":
            if token["name"] == "pre":
                self.pre_depth += 1
        elif kind == "EndTag" and token["name"] == "pre":
            self.pre_depth -= 1
        self.hold(token)

    def hold(self, token: dict) -> None:
        """Empty paragraphs and the like are kept back until their end tag shows them empty."""
        frames = self.frames
        kind = token["type"]
        if kind == "StartTag" and token["name"] in EMPTY_DROPPABLE:
            frames.append([[token], False, 0])
            return
        if not frames:
            self.out.append(token)
            return
        frame = frames[-1]
        frame[0].append(token)
        if kind == "Characters":
            if not frame[1] and token["data"].strip(_NOT_VISIBLE):
                frame[1] = True
        elif kind == "StartTag":
            if token["name"] in CONTENT_TAGS:
                frame[1] = True
            frame[2] += 1
        elif kind == "EmptyTag":
            if token["name"] in CONTENT_TAGS:
                frame[1] = True
        elif kind == "Entity":
            if token["name"] not in _BLANK_ENTITIES:
                frame[1] = True
        elif kind == "EndTag":
            if frame[2]:
                frame[2] -= 1
                return
            frames.pop()  # this end tag closes the frame's element
            if not frame[1]:
                return  # nothing visible inside: drop it whole
            if frames:
                frames[-1][0].extend(frame[0])
                frames[-1][1] = True
            else:
                self.out.extend(frame[0])

    def finish(self) -> list[dict]:
        if self.chars:
            self.tidy_text("".join(self.chars))
            self.chars.clear()
        if self.space:
            self.hold({"type": "SpaceCharacters", "data": "\n" if "\n" in self.space else " "})
            self.space = ""
        for frame in self.frames:  # unbalanced input cannot happen with html5lib; be safe
            self.out.extend(frame[0])
        self.frames.clear()
        return self.out


_BOOLEAN_ATTRIBUTES = html5lib_constants.booleanAttributes
_BOOLEAN_ANYWHERE = _BOOLEAN_ATTRIBUTES.get("", frozenset())
_NO_NAMES: frozenset[str] = frozenset()


def serialize(tokens: list[dict], escape_base_amp) -> tuple[str, str, str | None]:
    """The tokens as HTML, their plain text and their first absolute image, in one pass.

    The HTML is what bleach's serializer (html5lib's, with the options
    BleachSanitizer used to pass it) writes for these tokens, byte for byte:
    attribute values double-quoted unless they hold only double quotes,
    boolean attributes minimized, and `escape_base_amp` (bleach's) applied
    where bleach's serializer applies it. That includes its quirk of also
    applying it to whatever follows a lone "=" text token met after an end
    tag, which it takes for an attribute's "=". Going through html5lib's
    generators cost a tenth of sanitizing a body.

    The text has block boundaries as newlines, for summaries.
    """
    html_parts: list[str] = []
    emit = html_parts.append
    text_parts: list[str] = []
    keep_text = text_parts.append
    first_image = None
    in_tag = after_equals = False
    for token in tokens:
        kind = token["type"]
        if kind == "Characters" or kind == "SpaceCharacters" or kind == "Entity":
            if kind == "Characters":
                data = token["data"]
                keep_text(data)
                piece = html.escape(data, quote=False)  # as xml.sax.saxutils.escape, html5lib's choice
            elif kind == "Entity":
                piece = f"&{token['name']};"
                keep_text(html.unescape(piece))
            else:
                piece = token["data"]
                keep_text(piece)
            if in_tag:
                if after_equals:
                    if piece != '"':
                        html_parts.extend(escape_base_amp(piece))
                        after_equals = False
                        continue
                elif piece == "=":
                    after_equals = True
            emit(piece)
        elif kind == "StartTag" or kind == "EmptyTag":
            name = token["name"]
            if name in BLOCK_TAGS:
                keep_text("\n")
            in_tag = True
            after_equals = False  # escape_base_amp leaves "<name" as it is
            emit("<" + name)
            data = token["data"]
            if data:
                minimized = _BOOLEAN_ATTRIBUTES.get(name, _NO_NAMES)
                for (_, key), value in data.items():
                    if key in minimized or key in _BOOLEAN_ANYWHERE:
                        emit(" " + key)
                        continue
                    if "&" in value:
                        value = value.replace("&", "&amp;")
                    if "<" in value:
                        value = value.replace("<", "&lt;")
                    if '"' in value and "'" not in value:
                        # single-quoted: bleach's serializer passes these through as html5lib wrote them
                        emit(f" {key}='{value}'")
                        continue
                    if '"' in value:
                        value = value.replace('"', "&quot;")
                    if "&" in value:
                        value = "".join(escape_base_amp(value))
                    emit(f' {key}="{value}"')
                if name == "img" and first_image is None:
                    src = None
                    for (_, key), value in data.items():
                        if key == "src":
                            src = value
                    if src and src.startswith(("http://", "https://")):
                        first_image = src
            emit(">")
            in_tag = False
        elif kind == "EndTag":
            name = token["name"]
            if name in BLOCK_TAGS:
                keep_text("\n")
            in_tag = True  # bleach's serializer: anything starting with "<" opens a tag
            after_equals = False
            emit(f"</{name}>")
        elif kind == "Comment":
            in_tag = True
            after_equals = False
            emit(f"<!--{token['data']}-->")
        elif kind == "Doctype":
            raise ValueError("a doctype token cannot reach the serializer")  # the walk drops doctypes
        # anything else (SerializeError) writes nothing, as in html5lib
    return "".join(html_parts), "".join(text_parts), first_image




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
    """The policy on bleach: one parser and serializer, reused for every body.

    lexbor (C, the WHATWG parsing algorithm) builds the tree by default;
    `lexbor=False` uses bleach's own html5lib parser, pure Python and about
    2.7 times as slow. Either way bleach's filter decides every token and
    the output is written from the tokens, never copied from the input.
    """

    def __init__(self, policy: Policy, lexbor: bool = True):
        self.policy = policy
        self.lexbor = lexbor
        self.engine = "bleach" if lexbor else "bleach-html5lib"
        self.selectors = policy.selectors
        # the parser must know every tag StructureFilter acts on (see module doc)
        parse_tags = ALLOWED_TAGS | DROP_WITH_CONTENT | {"font", "center", "section", "article", "header", "footer", "aside", "nav", "main", "address", "label", "picture"}
        self.parser = _Parser(
            tags=parse_tags, strip=True, consume_entities=False, namespaceHTMLElements=False
        )
        # bleach's own filter, configured once; _Pass calls it for every token
        self._bleach = BleachSanitizerFilter(
            source=(),
            allowed_tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            allowed_protocols=ALLOWED_PROTOCOLS,
            strip_disallowed_tags=True,
            strip_html_comments=True,
        )
        self.drop_rule = DropRule(policy)
        # kept for its escape_base_amp, which serialize() calls as bleach's serializer does
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
        run = _Pass(self, base_url)
        if self.lexbor:
            fragment = LexborHTMLParser(body, is_fragment=True, options=_LEXBOR_OPTIONS)
            run.walk_lexbor(fragment.root, "&#" in body)
        else:
            run.walk(self.parser.parseFragment(body))
        tokens = run.finish()
        out, text, first_image = serialize(tokens, self.serializer.escape_base_amp)
        return CleanBody(squeeze_blank_lines(xml_safe(out)).strip(), text, first_image, frozenset(run.dropped_images), notes)
