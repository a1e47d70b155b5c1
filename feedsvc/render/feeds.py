"""Feed documents built with feedgen: RSS 2.0 and Atom 1.0, byte-stable for unchanged data.

feedgen's traps (docs/contracts.md) are handled here: dates always come from the data, entries are
appended in our order, the self link is added before the alternate one, and rendering is
serialised because feedgen switches the process-wide locale to format RSS dates.

Titles, descriptions and summaries are plain text written as HTML (`html_text`): readers render
RSS descriptions as HTML and sniff RSS titles for it, and Atom says `type="html"`; so
`<script>` or `Profits < forecast` in a headline shows as written and runs nothing.
"""

from __future__ import annotations

import threading

from feedgen.feed import FeedGenerator

from feedsvc.render.context import FeedContext
from feedsvc.render.feedgen_ext import (
    AtomEntryLinks,
    AtomEntryText,
    AtomFeedLinks,
    AtomFeedText,
    RssChannel,
    RssItemMedia,
)
from feedsvc.render.items import feed_id
from feedsvc.render.text import hex_references, html_text
from feedsvc.urls import feed_url

_feedgen_lock = threading.Lock()


def _generator(ctx: FeedContext, filename: str) -> FeedGenerator:
    s = ctx.settings
    atom = filename == "atom.xml"
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.register_extension("rss_media", RssChannel, RssItemMedia, atom=False, rss=True)
    fg.register_extension("atom_links", AtomFeedLinks, AtomEntryLinks, atom=True, rss=False)
    fg.register_extension("atom_text", AtomFeedText, AtomEntryText, atom=True, rss=False)
    history = ctx.spec.history
    # RFC 5005 links point to the same format on the reader's address.
    fg.rss_media.links = fg.atom_links.links = [
        *(("hub", hub) for hub in s.websub_hubs),
        *((rel, feed_url(ctx.origin, path, filename)) for rel, path in history.links()),
    ]
    fg.rss_media.archive = fg.atom_links.archive = history.archive
    # An archive is a part of its current feed: the same feed id.
    fg.id(feed_id(ctx.spec.path if history.current is None else history.current))
    fg.title(html_text(ctx.spec.title))
    fg.subtitle(html_text(ctx.spec.description))  # RSS description / Atom subtitle
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
        fe.title(html_text(item.title))
        fe.link(href=item.url, rel="alternate")
        fe.published(item.published)
        fe.updated(item.updated)
        # An Atom entry with neither content nor summary shows nothing but its title.
        summary = item.summary or ("" if item.content_html or not atom else item.title)
        if summary:
            fe.summary(html_text(summary), type="html")  # and the RSS description
        if item.content_html:
            fe.content(item.content_html, type="html")
        for author in item.authors:
            # The address goes where Atom has an element for it; in RSS (feedgen's <author>)
            # only if the configuration says so; never in dc:creator, which is a name.
            email = author.email if atom or s.author_emails else None
            fe.author(name=author.name, email=email)
            fe.dc.dc_creator(author.name)
        for tag in item.tags:
            fe.category(term=tag)
    return fg


def render_rss(ctx: FeedContext) -> bytes:
    fg = _generator(ctx, "rss.xml")
    with _feedgen_lock:
        return hex_references(fg.rss_str(pretty=False, xml_declaration=True))


def render_atom(ctx: FeedContext) -> bytes:
    fg = _generator(ctx, "atom.xml")
    with _feedgen_lock:
        return hex_references(fg.atom_str(pretty=False, xml_declaration=True))
