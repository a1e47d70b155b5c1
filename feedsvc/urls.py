"""The URL scheme every layer shares (docs/contracts.md): where a feed is served, the documents
by the file name they have in URLs, and each one's media type.

It sits below both render and web: render attaches its renderers to these names
(feedsvc.render.formats), and the web's cache-hit path needs only this module and the cache,
so a web worker serving hits never loads the renderers (tests/test_hit_path_imports.py).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

# Feed formats, in the order people are shown them.
FEED_CONTENT_TYPES: Final = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json",
    "roku.json": "application/json",
}
# Documents about the whole site, served at the root on every address.
SITE_CONTENT_TYPES: Final = {
    "feeds.opml": "text/x-opml; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
    "mirrors.json": "application/json",
}


def feed_url(origin: str, path: str, filename: str) -> str:
    """Where a feed is served: `/feeds/{path}/{filename}`, `/feeds/{filename}` for the site.
    A URI: the non-ASCII letters of a slug (a Persian tag) percent-encoded in UTF-8, as RFC 3987
    §3.1 maps an IRI, since RSS and OPML take URLs and HTTP headers (WebSub's Link) ASCII."""
    prefix = f"{origin}/feeds/{quote(path)}" if path else f"{origin}/feeds"
    return f"{prefix}/{filename}"
