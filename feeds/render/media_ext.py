"""A feedgen extension for Media RSS images without <media:group>.

feedgen's bundled media extension always wraps thumbnails in <media:group>,
which the Media RSS spec reserves for alternatives of one object (the W3C
validator rejects a group with a single child). Readers look for a plain
<media:thumbnail> / <media:content> under the entry or item.
"""

from __future__ import annotations

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.util import xml_elem

MEDIA_NS = "http://search.yahoo.com/mrss/"


class ImageExtension(BaseExtension):
    def extend_ns(self):
        return {"media": MEDIA_NS}


class ImageEntryExtension(BaseEntryExtension):
    def __init__(self):
        self._image: str | None = None

    def image(self, url: str | None = None) -> str | None:
        if url is not None:
            self._image = url
        return self._image

    def _extend(self, entry):
        if self._image:
            xml_elem(f"{{{MEDIA_NS}}}thumbnail", entry, url=self._image)
            xml_elem(f"{{{MEDIA_NS}}}content", entry, url=self._image, medium="image")
        return entry

    def extend_atom(self, entry):
        return self._extend(entry)

    def extend_rss(self, item):
        return self._extend(item)
