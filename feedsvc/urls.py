"""The URL scheme every layer shares (docs/contracts.md): where a feed is served, the documents
by the file name they have in URLs, and each one's media type.

It sits below both render and web: render attaches its renderers to these names
(feedsvc.render.formats), and the web's cache-hit path needs only this module and the cache,
so a web worker serving hits never loads the renderers (tests/test_hit_path_imports.py).
"""

from __future__ import annotations

import re
import unicodedata
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


# Characters of a feed path (`news/turkey`, `tag/<slug>`, `news/archive/2026-11`): the store keeps
# feed paths of up to 1000 (feedsvc.store.schema), and an archive adds 16.
MAX_FEED_PATH = 1024
_MAX_TARGET = len("/feeds/") + MAX_FEED_PATH + len("/feed.json")
# A feed document's URL path as feed_url writes it: `/feeds/` and the file name, with the feed
# path between them, segments as slugs are made (feedsvc.model.slugify, label_slug): ASCII lower
# case letters, digits, `-` and `_`, or characters beyond ASCII (letters, marks and digits only,
# checked by `_slug_letters`). No empty, `.` or `..` segment, no upper case, space, control or
# other punctuation: `/Feeds/`, `news//rss.xml`, `news/./rss.xml`, `%00` name no document.
_FEED_TARGET = re.compile(
    r"/feeds/(?:(?P<path>[-_a-z0-9\u0080-\U0010ffff]+(?:/[-_a-z0-9\u0080-\U0010ffff]+)*)/)?"
    r"(?P<filename>[a-z]+\.[a-z]+)")


def _slug_letters(feed: str) -> bool:
    """Whether a slug may have each character of `feed` beyond ASCII (its ASCII ones are the
    pattern's): a letter, mark or digit of any script (every `\\w` beyond ASCII is one, and a
    tag slug keeps marks), or the zero-width non-joiner of Persian spelling. `isalnum` decides
    most in C; only a path with marks is read a character at a time."""
    letters = feed
    for separator in "-_/\u200c":
        letters = letters.replace(separator, "")
    return letters.isalnum() or all(
        char.isascii() or unicodedata.category(char)[0] in "LMN" or char == "\u200c"
        for char in feed)


def feed_target(path: str) -> tuple[str, str] | None:
    """(feed path, file name) of a request's path (PATH_INFO, decoded) when it is written as
    `feed_url` writes feed URLs; None for any other spelling, which names no document (404):
    one URL per document, so no second render, cache entry or report row of the same one. The
    path is then looked up exactly (a section, tag or archive month), so a spelling this
    grammar lets through that no slug has (`tag/Ｔurkey`, another normalisation) is a 404 too,
    decided there."""
    match = _FEED_TARGET.fullmatch(path) if len(path) <= _MAX_TARGET else None
    if match is None:
        return None
    feed, filename = match["path"] or "", match["filename"]
    if (filename not in FEED_CONTENT_TYPES or len(feed) > MAX_FEED_PATH
            or not (feed.isascii() or _slug_letters(feed))):
        return None
    return feed, filename


def feed_url(origin: str, path: str, filename: str) -> str:
    """Where a feed is served: `/feeds/{path}/{filename}`, `/feeds/{filename}` for the site.
    A URI: the non-ASCII letters of a slug (a Persian tag) percent-encoded in UTF-8, as RFC 3987
    §3.1 maps an IRI, since RSS and OPML take URLs and HTTP headers (WebSub's Link) ASCII."""
    prefix = f"{origin}/feeds/{quote(path)}" if path else f"{origin}/feeds"
    return f"{prefix}/{filename}"
