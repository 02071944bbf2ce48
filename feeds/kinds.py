"""What each kind of published file is sent as: shared by the renderer and the server.

A module of its own, with no imports, so that a server worker gets these
without importing the renderer and the pipeline behind it.
"""

CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "xsl": "text/xsl; charset=utf-8",
}

# Pages show sanitized third-party HTML: no scripts, no forms, no base URL,
# images and media from anywhere, frames only over https.
PAGE_CSP = "default-src 'none'; img-src http: https: data:; media-src http: https:; style-src 'unsafe-inline'; frame-src https:; base-uri 'none'; form-action 'none'"
