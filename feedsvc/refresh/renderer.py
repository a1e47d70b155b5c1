"""Renders feeds from the store into documents for the cache: every format on every address.
Deciding what to render and publishing it is `refresher.py`'s job.

Each feed's articles are read and sanitised once and rendered by feedsvc.render.documents, once
per format whatever the number of addresses: a feed costs one query.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime

from feedsvc.cache import FeedCache, FeedKey, RenderedFeed
from feedsvc.config import Settings
from feedsvc.model import Article, updated_as_of
from feedsvc.refresh.metrics import FEED_RENDERS
from feedsvc.render.catalog import FeedSpec, build_catalog
from feedsvc.render.context import EPOCH
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.formats import FORMATS, SITE_DOCUMENTS
from feedsvc.render.items import Item, as_of, prepare
from feedsvc.store import Store, StoreUnavailable

# The web's miss path renders through this module alone, so it catches the store's failure as
# named here (tests/test_import_graph.py: web reaches the store only through this entry).
__all__ = ["FeedRenderer", "StoreUnavailable"]

log = logging.getLogger(__name__)


# Articles repeat across feeds (a desk's, its region's, the site's) and across refreshes, so the
# sanitised form of the most recent ones is kept. The key is the whole (frozen) article: any edit
# makes a new key.
@functools.lru_cache(maxsize=2048)
def _prepare_or_skip(article: Article) -> Item | None:
    try:
        return prepare(article)
    except Exception:  # one bad article must not take its feeds down
        log.exception("article %r left out of feeds: it cannot be prepared", article.id)
        return None


class FeedRenderer:
    def __init__(self, settings: Settings, store: Store, cache: FeedCache):
        self.settings = settings
        self.store = store
        self.cache = cache
        self._documents = FeedDocuments(settings)

    def catalog(self) -> dict[str, FeedSpec]:
        return build_catalog(self.settings, self.store.section_names())

    def render(self, spec: FeedSpec, now: datetime | None = None) -> dict[FeedKey, RenderedFeed]:
        """Every document of one feed: each format on each address."""
        with FEED_RENDERS.time():
            return self._render(spec, now)

    def _render(self, spec: FeedSpec, now: datetime | None) -> dict[FeedKey, RenderedFeed]:
        now = now or datetime.now(UTC)
        articles = self.store.newest(spec.path, self.settings.items_per_feed, now)
        items = [as_of(item, now) for item in map(_prepare_or_skip, articles) if item is not None]
        updated = max((i.updated for i in items), default=EPOCH)
        return {
            FeedKey(spec.path, fmt.filename, address): RenderedFeed.of(body, fmt.content_type,
                                                                       updated)
            for (address, fmt), body in self._documents.render(spec, items).items()
        }

    def render_site(
        self, catalog: dict[str, FeedSpec] | None = None
    ) -> dict[FeedKey, RenderedFeed]:
        """The site documents (OPML, index page, address list) on every address; they change
        when the site feed does."""
        catalog = catalog or self.catalog()
        now = datetime.now(UTC)
        newest = self.store.newest("", 1, now)
        updated = max((updated_as_of(a.published, a.updated, now) for a in newest), default=EPOCH)
        entries = {}
        for origin in self.settings.addresses:
            for document in SITE_DOCUMENTS.values():
                body = document.render(catalog.values(), FORMATS.values(), origin, self.settings)
                key = FeedKey("", document.filename, origin)
                entries[key] = RenderedFeed.of(body, document.content_type, updated)
        return entries
