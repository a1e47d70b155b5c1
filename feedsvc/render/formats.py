"""The renderers of the documents the service emits, attached to the names and media types of
the URL scheme (feedsvc.urls, docs/contracts.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from feedsvc.config import Settings
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.context import FeedContext, Format
from feedsvc.render.feeds import render_atom, render_rss
from feedsvc.render.jsonfeed import render_json_feed
from feedsvc.render.roku import render_roku
from feedsvc.render.site import render_index, render_mirrors, render_opml
from feedsvc.render.text import xml_text
from feedsvc.urls import FEED_CONTENT_TYPES, SITE_CONTENT_TYPES


def json_text(text: str) -> str:
    """`text` as it appears inside a JSON string written with ensure_ascii=False."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


_FEED_RENDERERS: dict[str, tuple[Callable[[FeedContext], bytes], Callable[[str], str]]] = {
    "rss.xml": (render_rss, xml_text),
    "atom.xml": (render_atom, xml_text),
    "feed.json": (render_json_feed, json_text),
    "roku.json": (render_roku, json_text),
}
FORMATS: dict[str, Format] = {
    filename: Format(filename, content_type, *_FEED_RENDERERS[filename])
    for filename, content_type in FEED_CONTENT_TYPES.items()
}


@dataclass(frozen=True, slots=True)
class SiteDocument:
    """A document about the whole site, rendered per address from the feed catalog."""

    filename: str
    content_type: str
    render: SiteRenderer


SiteRenderer = Callable[[Iterable[FeedSpec], Iterable[Format], str, Settings], bytes]
_SITE_RENDERERS: dict[str, SiteRenderer] = {
    "feeds.opml": render_opml,
    "index.html": render_index,
    "mirrors.json": lambda _feeds, _formats, _origin, settings: render_mirrors(settings),
}
SITE_DOCUMENTS: dict[str, SiteDocument] = {
    filename: SiteDocument(filename, content_type, _SITE_RENDERERS[filename])
    for filename, content_type in SITE_CONTENT_TYPES.items()
}
