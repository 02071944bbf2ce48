"""Slugs and URL paths shared by the static tree and the live server.

A slug keeps Unicode (金融 stays 金融) so URLs read naturally in a
browser's address bar; it is percent-encoded only when written into a URL.
The on-disk name is the unencoded slug, so nginx (which decodes the request
path before looking up a file) serves the built tree at the same URLs.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
import re
import unicodedata
from urllib.parse import quote

# RFC 3986 gen-delims and sub-delims, '%' (would read as an escape), and the
# characters a URL or a file system treats specially. Whitespace is handled
# separately so that every Unicode space counts.
_RESERVED = set(":/?#[]@!$&'()*+,;=%<>\"\\^`{|}")
_DASHES = re.compile(r"-{2,}")


class SlugError(ValueError):
    pass


def _is_unsafe(ch: str) -> bool:
    if ch in _RESERVED or ch.isspace():
        return True
    category = unicodedata.category(ch)
    # control, format (zero-width joiners, bidi overrides), surrogates, unassigned
    return category in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp", "Zs")


def slugify(name: str) -> str:
    """A URL- and file-system-safe, Unicode-preserving slug; never empty, '.' or '..'."""
    text = unicodedata.normalize("NFKC", name).lower()
    text = "".join("-" if _is_unsafe(ch) else ch for ch in text)
    text = _DASHES.sub("-", text).strip("-")
    if text.strip(".") == "":
        # '.', '..' and '...' would be read as directory references; keep a
        # visible trace of the original instead of dropping the category
        text = "-".join(f"u{ord(ch):04x}" for ch in name.strip()) or "unnamed"
        text = text[:60]
    # most file systems cap a name at 255 bytes
    while len(text.encode("utf-8")) > 200:
        text = text[:-1]
    return text.strip("-") or "unnamed"


@lru_cache(maxsize=65536)
def url_quote(path: str) -> str:
    """Percent-encode a site path for use in a URL; '/' separators stay.

    Cached: every page links the same few hundred feed paths again and again.
    """
    return quote(path, safe="/-._~")


def absolute_url(base_url: str, path: str) -> str:
    return base_url + url_quote(path)


_SEGMENT_SPECIAL = re.compile(r"[/\\%?#]")


def safe_path_segment(segment: str) -> str:
    """A post id segment as it may appear in a path: no traversal, no controls."""
    if segment.isprintable() and not _SEGMENT_SPECIAL.search(segment):
        cleaned = segment  # the common case, without a per-character walk
    else:
        # isprintable() is False exactly for controls, format characters,
        # unassigned code points and separators other than the space
        cleaned = "".join("_" if (ch in "/\\%?#" or not (ch.isprintable() or ch == " ")) else ch for ch in segment)
    cleaned = cleaned.strip()
    if cleaned in ("", ".", ".."):
        cleaned = "_" + cleaned.replace(".", "_") + "_"
    while len(cleaned.encode("utf-8")) > 200:
        cleaned = cleaned[:-1]
    return cleaned


MAX_POST_PATH_BYTES = 600


@lru_cache(maxsize=1 << 17)
def post_path(post_id: str) -> str:
    """/posts/<id>/ with each '/'-separated part of the id made safe.

    An id too long for a file system path (PATH_MAX, 255-byte names) gets a
    shortened path ending in a digest of the whole id: still unique and
    stable, and the id itself (in feeds) is untouched.
    """
    parts = [safe_path_segment(p) for p in post_id.split("/")]
    path = "/posts/" + "/".join(parts) + "/"
    if len(path.encode("utf-8")) <= MAX_POST_PATH_BYTES:
        return path
    digest = hashlib.blake2b(post_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    head = "-".join(parts)
    while len(head.encode("utf-8")) > 120:
        head = head[:-1]
    return f"/posts/{head.strip('-')}-{digest}/"
