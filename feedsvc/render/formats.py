"""The feed formats the service emits, by the file name they have in URLs (docs/contracts.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from feedsvc.config import Settings
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.context import Format
from feedsvc.render.feeds import render_atom, render_rss
from feedsvc.render.jsonfeed import render_json_feed
from feedsvc.render.roku import render_roku
from feedsvc.render.site import render_index, render_mirrors, render_opml
from feedsvc.render.text import xml_text


def json_text(text: str) -> str:
    """`text` as it appears inside a JSON string written with ensure_ascii=False."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


FORMATS: dict[str, Format] = {
    f.filename: f
    for f in (
        Format("rss.xml", "application/rss+xml; charset=utf-8", render_rss, xml_text),
        Format("atom.xml", "application/atom+xml; charset=utf-8", render_atom, xml_text),
        Format("feed.json", "application/feed+json", render_json_feed, json_text),
        Format("roku.json", "application/json", render_roku, json_text),
    )
}


@dataclass(frozen=True, slots=True)
class SiteDocument:
    """A document about the whole site, rendered per address from the feed catalog."""

    filename: str
    content_type: str
    render: Callable[[Iterable[FeedSpec], Iterable[Format], str, Settings], bytes]


SITE_DOCUMENTS: dict[str, SiteDocument] = {
    d.filename: d
    for d in (
        SiteDocument("feeds.opml", "text/x-opml; charset=utf-8", render_opml),
        SiteDocument("index.html", "text/html; charset=utf-8", render_index),
        SiteDocument("mirrors.json", "application/json",
                     lambda _feeds, _formats, _origin, settings: render_mirrors(settings)),
    )
}
