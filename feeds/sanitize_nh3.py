"""The same policy on nh3 (ammonia, Rust) for speed: `[sanitize] engine = "nh3"`.

The structural steps that ammonia has no hook for (hidden elements, drop
selectors, lazy images, absolute URLs, empty paragraphs) run on an lxml
tree first; then nh3 enforces the allowlist on the serialized result with
its own spec-compliant parser (html5ever), so the security boundary is
nh3's whatever lxml made of the input — exactly as bleach is for the
default engine.
"""

from __future__ import annotations

import functools
import html
import itertools
import re

import nh3
from lxml import etree

from .policy import (
    BLOCK_TAGS,
    BREAKING_SPACE,
    EMPTY_DROPPABLE,
    ALLOWED_ATTRIBUTES,
    ALLOWED_PROTOCOLS,
    ALLOWED_TAGS,
    DROP_WITH_CONTENT,
    LAZY_SRC_ATTRIBUTES,
    URL_ATTRIBUTES,
    SPACE_RUN,
    CleanBody,
    DropRule,
    Policy,
    is_placeholder_src,
    absolutize,
    prepare_body,
    squeeze_blank_lines,
)
from .text import xml_safe

_IFRAME_SANDBOX = "allow-scripts allow-same-origin allow-popups"
_LINK_REL = "noopener noreferrer nofollow"
_SPACES = " \t\n\r\f\u00a0\u3000"
_SAFE_URL = re.compile(r"(?:https?://|mailto:)", re.I)
_CONTROL_OR_SPACE = re.compile("[\x00-\x20]")
_MEDIA_TAGS = frozenset({"img", "video", "source", "audio"})


# A numeric character reference to a character XML forbids (those xml_safe
# removes: C0 controls but TAB, LF and CR; surrogates; U+FFFE and U+FFFF), the
# only way a body (already xml_safe) can put one into lxml's tree.
_FORBIDDEN_REFERENCE = re.compile(
    r"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF])(?![0-9a-fA-F])"
    r"|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]|5529[6-9]|55[3-9][0-9]{2}|56[0-9]{3}|57[0-2][0-9]{2}|573[0-3][0-9]|5734[0-3]|6553[45])(?![0-9]))"
)


def _remove_forbidden_characters(root) -> None:
    """xml_safe every text, tail and attribute value below root.

    lxml reads `&#1;` as U+0001 but refuses to store such a character, so the
    first edit of that text (whitespace tidying, removing a neighbour) would
    raise ValueError and fail the post; the output drops them anyway.
    """
    for element in root.iter():
        if element.text and xml_safe(element.text) != element.text:
            element.text = xml_safe(element.text)
        if element.tail and xml_safe(element.tail) != element.tail:
            element.tail = xml_safe(element.tail)
        if isinstance(element.tag, str):
            attrib = element.attrib
            for name, value in attrib.items():
                if xml_safe(value) != value:
                    attrib[name] = xml_safe(value)


_PARSER = etree.HTMLParser(remove_comments=False, remove_pis=False, no_network=True, recover=True, default_doctype=False)


def _remove(element) -> None:
    """Remove an element with its content, keeping the text that follows it."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _tidy_spaces(text: str) -> str:
    """Outside <pre>: a run of spaces holding a line break becomes one line break, other runs one space."""
    if text == "\n":
        return text  # the commonest text: the line break between two blocks
    if "\n" in text:  # what BREAKING_SPACE needs; most text nodes have none
        text = BREAKING_SPACE.sub("\n", text)
    if "  " in text or "\t" in text or "\r" in text or "\f" in text:  # what a SPACE_RUN needs
        text = SPACE_RUN.sub(" ", text)
    return text


class Nh3Sanitizer:
    engine = "nh3"

    def __init__(self, policy: Policy):
        self.policy = policy
        self.selectors = policy.selectors
        self.tags = set(ALLOWED_TAGS)
        generic = set(ALLOWED_ATTRIBUTES["*"])
        self.attributes = {tag: set(attrs) | generic for tag, attrs in ALLOWED_ATTRIBUTES.items() if tag != "*"}
        self.attributes["*"] = generic
        # ammonia sets these itself and refuses them in the allowlist
        self.attributes["a"].discard("rel")
        self.attributes["iframe"].discard("sandbox")
        self.drop_rule = DropRule(policy)
        options = dict(
            tags=self.tags,
            clean_content_tags=set(DROP_WITH_CONTENT) - self.tags,
            attributes=self.attributes,
            url_schemes=set(ALLOWED_PROTOCOLS),
            strip_comments=True,
            link_rel=_LINK_REL,
            set_tag_attribute_values={"iframe": {"sandbox": _IFRAME_SANDBOX}},
        )
        if hasattr(nh3, "Cleaner"):
            # converts the options once: nh3.clean() spends ~50 µs a call on that
            self._nh3_clean = nh3.Cleaner(**options).clean
        else:  # an nh3 without Cleaner
            self._nh3_clean = functools.partial(nh3.clean, **options)

    def _rewrite(self, attrs, name: str, base_url: str) -> None:
        """Lazy images get their real src; URL attributes become absolute, or go unless http(s)/mailto.

        Each URL attribute's final value is decided before anything is
        written: only vetted URLs reach lxml, and an unchanged value is not
        written again (every write costs).
        """
        lazy_src = None
        if name in _MEDIA_TAGS and is_placeholder_src(attrs.get("src"), self.policy):
            for lazy in LAZY_SRC_ATTRIBUTES:
                value = (attrs.get(lazy) or "").strip()
                if value and not value.lower().startswith("data:"):
                    lazy_src = value
                    break
            else:
                srcset = (attrs.get("srcset") or "").strip()
                first = srcset.split(",")[0].strip().split(" ")[0] if srcset else ""
                if first:
                    lazy_src = first
        names = attrs.keys()
        for attr in names:
            if attr in URL_ATTRIBUTES:
                self._set_url(attrs, attr, lazy_src if attr == "src" and lazy_src else attrs[attr], base_url)
        if lazy_src and "src" not in names:
            self._set_url(attrs, "src", lazy_src, base_url)

    @staticmethod
    def _set_url(attrs, attr: str, value: str, base_url: str) -> None:
        url = absolutize(value, base_url).replace(" ", "%20")
        # ammonia checks only some URL attributes (not cite), and lxml would
        # percent-encode a tab in "java\tscript:" into a harmless-looking
        # relative URL: decide here, strictly
        if _SAFE_URL.match(url) and not _CONTROL_OR_SPACE.search(url):
            if attrs.get(attr) != url:
                attrs[attr] = url
        elif attr in attrs:
            del attrs[attr]

    def clean(self, body: str, base_url: str) -> CleanBody:
        body, notes = prepare_body(body)
        if not body.strip():
            return CleanBody("", "", None)
        try:
            document = etree.fromstring("<html><body><div>" + body + "</div></body></html>", _PARSER)
        except (etree.ParserError, etree.XMLSyntaxError, ValueError):
            document = None
        root = document.find("body/div") if document is not None else None
        if root is None:
            return CleanBody(html.escape(body), body, None, frozenset(), notes)
        if "&#" in body and _FORBIDDEN_REFERENCE.search(body):
            _remove_forbidden_characters(root)
        dropped_images = self._structure(root, base_url)
        text, first_image = self._tidy(root)
        out = self._nh3_clean(etree.tostring(root, method="html", encoding="unicode"))
        return CleanBody(squeeze_blank_lines(xml_safe(out)).strip(), text, first_image, frozenset(dropped_images), notes)

    def _structure(self, root, base_url: str) -> set[str]:
        """Remove what goes with its content, unwrap unknown elements, rewrite URLs; → the removed images.

        lxml's HTML parser gives every tag name in lower case, so names are
        compared as they are.
        """
        doomed = []
        unknown: set[str] = set()  # names of elements to unwrap
        drop_rule = self.drop_rule
        drops = drop_rule.drops
        tags = self.tags
        rewrite = self._rewrite
        # most elements have no attributes; such an element goes only for its
        # name or for a selector that asks for no attribute
        bare_may_drop = bool(drop_rule.bare_subjects)
        if drop_rule.needs_ancestors:
            walk = self._walk_with_ancestors(root)
        else:
            # no selector looks above its element (drops() then reads no
            # ancestors): a plain walk, half the cost of iterwalk
            walk = zip(root.iterdescendants(), itertools.repeat(()))
        # what is inside a doomed element is passed over as it is (its images
        # are reported as they were written); doomed elements are few and small
        inside_doomed: set = set()
        for element, ancestors in walk:
            if inside_doomed and element in inside_doomed:
                continue
            name = element.tag
            if name.__class__ is not str:  # a comment or processing instruction
                doomed.append(element)
                continue
            attrs = element.attrib
            if (attrs or bare_may_drop or name in DROP_WITH_CONTENT) and drops(name, attrs, ancestors, base_url):
                doomed.append(element)
                if len(element):
                    inside_doomed.update(element.iterdescendants())
            elif name not in tags:
                unknown.add(name)  # ammonia drops the content of some unknown elements
            elif attrs and (name in _MEDIA_TAGS or not URL_ATTRIBUTES.isdisjoint(attrs)):
                rewrite(attrs, name, base_url)
        dropped_images: set[str] = set()
        for element in doomed:
            if isinstance(element.tag, str):
                for image in element.iter("img"):
                    for attr in ("src", *LAZY_SRC_ATTRIBUTES):
                        if image.get(attr):
                            dropped_images.add(absolutize(image.get(attr), base_url))
            _remove(element)
        if unknown:
            # after the removals: what is inside a removed element stays removed
            etree.strip_tags(root, *unknown)
        return dropped_images

    @staticmethod
    def _walk_with_ancestors(root):
        """(element, its open ancestors below root and itself as (name, attrs)) in document order."""
        ancestors: list[tuple[str, object]] = []
        for event, element in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
            if event == "start":
                if element is root:
                    continue
                ancestors.append((element.tag, element.attrib))
                yield element, ancestors
            elif event == "end":
                if element is not root:
                    ancestors.pop()
            else:
                yield element, ancestors

    def _tidy(self, root) -> tuple[str, str | None]:
        """Collapse whitespace outside <pre>; drop elements left with nothing visible.

        → the plain text (block boundaries as newlines) and the first
        absolute image, read off the tidied tree in the same walk: the
        parts of an element dropped afterwards are cut out again (its
        tail, which takes its place, stays where it was).
        """
        pre = 0
        # [element, index of its first part, index after its last part (its
        # tail not counted), whether its own text is blank]
        candidates = []
        open_candidates = []
        parts: list[str] = []
        append = parts.append
        first_image = None
        for event, element in etree.iterwalk(root, events=("start", "end")):
            name = element.tag  # lower case from lxml's HTML parser; no comment is left
            if event == "start":
                if name == "pre":
                    pre += 1
                first_part = len(parts)
                if name in BLOCK_TAGS:
                    append("\n")
                if name == "img" and first_image is None:
                    src = element.get("src", "")
                    if src.startswith(("http://", "https://")):
                        first_image = src
                text = element.text
                if text and not pre:
                    tidied = _tidy_spaces(text)
                    if tidied != text:
                        element.text = text = tidied
                if name in EMPTY_DROPPABLE and element is not root:
                    candidate = [element, first_part, 0, not text or not text.strip(_SPACES)]
                    candidates.append(candidate)
                    open_candidates.append(candidate)
                if text:
                    append(text)
            else:
                if name == "pre":
                    pre -= 1
                if name in BLOCK_TAGS:
                    append("\n")
                tail = element.tail
                if tail and not pre:
                    tidied = _tidy_spaces(tail)
                    if tidied != tail:
                        element.tail = tail = tidied
                if element is root:
                    continue  # its tail is serialized, but is no part of the text
                if name in EMPTY_DROPPABLE:
                    open_candidates.pop()[2] = len(parts)
                if tail:
                    append(tail)
        # innermost first, so a parent sees its children already gone
        for element, first_part, end_part, blank in reversed(candidates):
            # visible text stays visible: a removal only adds the removed
            # element's tail to its parent's text, which is read again here
            if not blank or (element.text or "").strip(_SPACES):
                continue
            children = list(element)
            if children and not all(c.tag == "br" and not (c.tail or "").strip(_SPACES) for c in children):
                continue
            _remove(element)
            parts[first_part:end_part] = [""] * (end_part - first_part)
        return "".join(parts), first_image
