"""Renders feeds from the store into cache entries: every format on every address.
Deciding what to render and publishing it is `refresher.py`'s job.

Each feed's articles are read and sanitised once, then placed on each address and rendered in
each format, so a feed costs one query whatever the number of mirrors and formats.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from feedsvc.cache import CachedFeed, FeedCache, FeedKey, make_entry
from feedsvc.config import Settings
from feedsvc.model import Article
from feedsvc.render.catalog import FeedSpec, build_catalog
from feedsvc.render.context import EPOCH, FeedContext, Format
from feedsvc.render.formats import FORMATS, SITE_DOCUMENTS
from feedsvc.render.items import Item, place, prepare
from feedsvc.render.links import Rebase
from feedsvc.store import Store

log = logging.getLogger(__name__)


def _prepare_or_skip(article: Article) -> Item | None:
    try:
        return prepare(article)
    except Exception:  # one bad article must not take its feeds down
        log.exception("article %r left out of feeds: it cannot be prepared", article.id)
        return None


def _render_without_bad_items(fmt: Format, ctx: FeedContext) -> bytes:
    """`ctx` rendered in `fmt`; should an item make that fail, the feed is rendered without the
    items that fail on their own, each logged, instead of failing whole."""
    try:
        return fmt.render(ctx)
    except Exception:
        log.exception("%s of %r failed; finding the item at fault", fmt.filename, ctx.spec.path)
    good = []
    for item in ctx.items:
        try:
            fmt.render(dataclasses.replace(ctx, items=[item]))
            good.append(item)
        except Exception as exc:
            # %r: the bad value itself may be unprintable (a lone surrogate, say)
            log.error("item %s (%r) left out of %s: %r", item.id, item.url, fmt.filename, exc)
    return fmt.render(dataclasses.replace(ctx, items=good))


class FeedRenderer:
    def __init__(self, settings: Settings, store: Store, cache: FeedCache):
        self.settings = settings
        self.store = store
        self.cache = cache
        self._rebases = [Rebase(settings.origin, a) for a in settings.addresses]

    def catalog(self) -> dict[str, FeedSpec]:
        return build_catalog(self.settings, self.store.section_names())

    def render(self, spec: FeedSpec, now: datetime | None = None) -> dict[FeedKey, CachedFeed]:
        """Every document of one feed: each format on each address."""
        articles = self.store.newest(spec.path, self.settings.items_per_feed, now)
        items = [item for item in map(_prepare_or_skip, articles) if item is not None]
        entries = {}
        for rebase in self._rebases:
            placed = [
                place(i, rebase, self.settings.addresses, self.settings.mirror_footer)
                for i in items
            ]
            ctx = FeedContext(spec, placed, rebase.target, self.settings)
            for fmt in FORMATS.values():
                key = FeedKey(spec.path, fmt.filename, rebase.target)
                body = _render_without_bad_items(fmt, ctx)
                entries[key] = make_entry(body, fmt.content_type, ctx.updated)
        return entries

    def render_site(self, catalog: dict[str, FeedSpec] | None = None) -> dict[FeedKey, CachedFeed]:
        """The site documents (OPML, index page, address list) on every address; they change
        when the site feed does."""
        catalog = catalog or self.catalog()
        newest = self.store.newest("", 1)
        updated = max((a.updated for a in newest), default=EPOCH)
        entries = {}
        for origin in self.settings.addresses:
            for document in SITE_DOCUMENTS.values():
                body = document.render(catalog.values(), FORMATS.values(), origin, self.settings)
                key = FeedKey("", document.filename, origin)
                entries[key] = make_entry(body, document.content_type, updated)
        return entries
