"""Feed documents built with feedgen: RSS 2.0 and Atom 1.0, byte-stable for unchanged data.

feedgen's traps (docs/contracts.md) are handled here: dates always come from the data, entries are
appended in our order, the self link is added before the alternate one, and rendering is
serialised because feedgen switches the process-wide locale to format RSS dates.
"""

from __future__ import annotations

import threading

from feedgen.feed import FeedGenerator

from feedsvc.render.context import FeedContext
from feedsvc.render.feedgen_ext import AtomEntryLinks, AtomFeedHubs, RssChannel, RssItemMedia
from feedsvc.render.items import feed_id

_feedgen_lock = threading.Lock()


def _generator(ctx: FeedContext, filename: str) -> FeedGenerator:
    s = ctx.settings
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.register_extension("rss_media", RssChannel, RssItemMedia, atom=False, rss=True)
    fg.register_extension("atom_links", AtomFeedHubs, AtomEntryLinks, atom=True, rss=False)
    fg.rss_media.hubs = fg.atom_links.hubs = s.websub_hubs
    fg.id(feed_id(ctx.spec.path))
    fg.title(ctx.spec.title)
    fg.subtitle(ctx.spec.description)  # RSS description / Atom subtitle
    fg.link(href=ctx.spec.feed_url(ctx.origin, filename), rel="self")
    fg.link(href=ctx.spec.page_url(ctx.origin), rel="alternate")  # last: RSS channel link
    fg.language(s.language)
    fg.author(name=s.site_title)
    fg.generator("feedsvc")
    fg.updated(ctx.updated)
    fg.ttl(max(1, s.refresh_interval // 60))
    for item in ctx.items:
        fe = fg.add_entry(order="append")
        fe.rss_media.item = fe.atom_links.item = item
        fe.id(item.id)
        fe.guid(item.id, permalink=False)
        fe.title(item.title)
        fe.link(href=item.url, rel="alternate")
        fe.published(item.published)
        fe.updated(item.updated)
        if item.summary:
            fe.description(item.summary)
        if item.content_html:
            fe.content(item.content_html, type="html")
        for author in item.authors:
            fe.author(name=author)
            fe.dc.dc_creator(author)
        for tag in item.tags:
            fe.category(term=tag)
    return fg


def render_rss(ctx: FeedContext) -> bytes:
    fg = _generator(ctx, "rss.xml")
    with _feedgen_lock:
        return fg.rss_str(pretty=False, xml_declaration=True)


def render_atom(ctx: FeedContext) -> bytes:
    fg = _generator(ctx, "atom.xml")
    with _feedgen_lock:
        return fg.atom_str(pretty=False, xml_declaration=True)
