"""A Jinja template rendered once per shape of its values, then filled by joining strings.

A site has a page per post, all one template around a dozen values. Jinja
spends most of such a page on its own machinery (a context, the base
template's blocks, a generator per block, an escape call per output);
10,000 pages took 1.3-1.6 s of a build's CPU. Here the template is rendered
once with a marker in place of each value and cut at the markers; a page is
then the pieces joined with its values, each escaped as autoescaping would
(Markup as it is).

A value's truthiness can change what the template renders (`{% if %}`), so
there is one skeleton per *shape*: which values are empty, and how. Every
skeleton is checked once against Jinja itself, on the values it was first
needed for with characters that must be escaped appended to each text; a
template that uses a value in any other way than printing it (a filter, a
test, `|safe` on text) fails the check, and pages of that shape are then
rendered by Jinja. Either way a page has the bytes Jinja would give it.
"""

from __future__ import annotations

import re
from typing import Callable

from markupsafe import Markup, escape

_MARKER = "\ue000{}\ue001"  # private-use characters: no template holds them, and escaping leaves them alone
_MARKERS = re.compile("\ue000([0-9]+)\ue001")
_MUST_ESCAPE = "<&\"'>"


class Skeletons:
    """Renders `template` with `arrange(values)` as its context, by skeleton where that gives the same text."""

    def __init__(self, template, arrange: Callable[[dict], dict]):
        self._template = template
        self._arrange = arrange
        self._cut: dict[tuple, list | None] = {}  # shape → pieces (literal, value index, literal, …), or None: Jinja's
        self._names: tuple | None = None

    def render(self, values: dict) -> str:
        """The template with these values; every call names the same values, in the same order."""
        shape = tuple([True if value else value for value in values.values()])
        try:
            pieces = self._cut[shape]
        except KeyError:
            if self._names is None:
                self._names = tuple(values)
            elif tuple(values) != self._names:
                raise ValueError(f"skeleton values {tuple(values)} are not {self._names}")
            pieces = self._cut[shape] = self._make(values)
        if pieces is None:
            return self._template.render(**self._arrange(values))
        return _fill(pieces, values)

    def _make(self, values: dict) -> list | None:
        marked = {
            name: ((Markup if isinstance(value, Markup) else str)(_MARKER.format(i)) if value else value)
            for i, (name, value) in enumerate(values.items())
        }
        parts: list = _MARKERS.split(self._template.render(**self._arrange(marked)))
        parts[1::2] = [int(i) for i in parts[1::2]]
        probe = {
            name: value + _MUST_ESCAPE if value and isinstance(value, str) and not isinstance(value, Markup) else value
            for name, value in values.items()
        }
        if _fill(parts, probe) != self._template.render(**self._arrange(probe)):
            return None
        return parts


def _fill(pieces: list, values: dict) -> str:
    texts = [_escaped(value) for value in values.values()]
    out = pieces.copy()
    out[1::2] = [texts[i] for i in pieces[1::2]]
    return "".join(out)


def _escaped(value) -> str:
    """`value` as autoescaping prints it: markupsafe's escape, without making a Markup of every text."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;").replace('"', "&#34;")
    return str(escape(value))
