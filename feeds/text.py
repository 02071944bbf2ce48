"""Plain-text helpers shared by the normalizer, sanitizer and renderers."""

from __future__ import annotations

import html
import re
import unicodedata

# Characters XML 1.0 forbids (C0 controls but TAB/LF/CR, surrogates, U+FFFE/F).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Only real HTML element names count as tags in titles: `Optional<Int>` is text.
_HTML_NAMES = (
    "a|abbr|b|big|blockquote|br|center|cite|code|del|div|em|font|h[1-6]|hr|i|img|ins|kbd|mark|p|pre|q|s|"
    "small|span|strike|strong|sub|sup|tt|u|wbr"
)
_TAG = re.compile(rf"<!--.*?-->|</?(?:{_HTML_NAMES})(?:\s[^<>]*)?/?>", re.I | re.S)
_WHITESPACE = re.compile(r"\s+")
# Characters that must never end a cut: joiners, variation selectors, marks.
_NO_CUT_AFTER = re.compile("[\u200d\ufe00-\ufe0f\U000e0100-\U000e01ef]")


_C0_FORBIDDEN_BYTES = bytes(code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D))


def xml_safe(text: str) -> str:
    # The regex tests every character one by one (about 40 µs for a post's
    # body), and most texts hold none of these: two substring searches and
    # a table scan of the UTF-8 bytes show that in half the time. A lone
    # surrogate cannot be encoded, which also sends the text to the regex.
    if "\ufffe" not in text and "\uffff" not in text:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            if len(data.translate(None, _C0_FORBIDDEN_BYTES)) == len(data):
                return text
    return _XML_FORBIDDEN.sub("", text)


def collapse(text: str) -> str:
    """Every run of whitespace (including U+3000 and NBSP) becomes one space."""
    return _WHITESPACE.sub(" ", text).strip()


def collapse_head(text: str, length: int) -> str:
    """collapse(text)[:length], without collapsing all of a long text.

    Collapsing the start of a text gives the start of collapse(text) (a run
    of whitespace cut short still becomes one space), so longer and longer
    starts are tried until one gives enough.
    """
    size = 2 * length + 64
    while size < len(text):
        head = collapse(text[:size])
        if len(head) >= length:
            return head[:length]
        size *= 4
    return collapse(text)[:length]


def plain_text(value: str) -> str:
    """Tags stripped, entities decoded, whitespace collapsed, XML-safe."""
    text = _TAG.sub(" ", value) if "<" in value else value
    if "&" in text:
        text = html.unescape(text)
    return collapse(xml_safe(text))


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """At most `limit` characters, cut between characters, ellipsis added when cut.

    CJK text has no spaces, so the cut is at a character boundary; it never
    separates a base character from a combining mark, a ZWJ sequence or a
    variation selector, and prefers a word boundary in the last 15 characters
    of space-separated text.
    """
    if len(text) <= limit:
        return text
    cut = max(limit - len(ellipsis), 1)
    while cut > 1 and (
        unicodedata.combining(text[cut]) or _NO_CUT_AFTER.match(text[cut]) or _NO_CUT_AFTER.match(text[cut - 1])
    ):
        cut -= 1
    space = text.rfind(" ", max(cut - 15, 0), cut + 1)
    if space > 0:
        cut = space
    return text[:cut].rstrip() + ellipsis
