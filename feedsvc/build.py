"""The one step from the store to the cache's documents: a feed's articles read and rendered in
every format on every address (feedsvc.render), as cache entries. Refresh (which decides what
to render and publishes it, feedsvc.refresh.refresher) and the web's miss path
(feedsvc.web.routes) both take this step, and only through this module.

Each feed's articles are read and sanitised once and rendered once per format whatever the
number of addresses: a feed costs one query. feedsvc.render is imported on first use: a web
worker that only serves cache hits never loads the renderers (feedgen, lxml, nh3; the memory
figures are in bench/README.md).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import Histogram

from feedsvc.archives import ARCHIVE_FORMATS, Month, archive_path, parse_archive_path
from feedsvc.cache import FeedCache, FeedKey, RenderedFeed
from feedsvc.config import Settings
from feedsvc.model import LABEL_KINDS, Article, is_label_feed, person, updated_as_of
from feedsvc.urls import FEED_CONTENT_TYPES

# The web reaches the store through this module alone (tests/test_import_graph.py): its miss
# path catches the store's failure as named here, loaded with the store on first use.
__all__ = ["FeedBuilder", "RenderFailed", "Store", "StoreUnavailable"]

if TYPE_CHECKING:
    from feedsvc.render import FeedDocuments, FeedSpec, Item
    from feedsvc.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

# In a scheduler it joins the refresh metrics; in a web process, the web's /metrics (misses).
FEED_RENDERS = Histogram(
    "feedsvc_feed_render_duration_seconds",
    "One feed rendered in every format on every address (query included)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


# Articles repeat across feeds (a desk's, its region's, the site's) and across refreshes, so the
# sanitised form of the most recent ones is kept. The key is the whole (frozen) article: any edit
# makes a new key.
@functools.lru_cache(maxsize=2048)
def _prepare_or_skip(article: Article, excerpt_length: int | None) -> Item | None:
    from feedsvc.render import prepare

    try:
        return prepare(article, excerpt_length)
    except Exception:  # one bad article must not take its feeds down
        log.exception("article %r left out of feeds: it cannot be prepared", article.id)
        return None


class RenderFailed(Exception):
    """A feed's documents cannot be rendered (its articles that fail alone are left out, so
    the fault is the feed's own: a name it cannot carry). `article` is the one that gave it
    that name, where it is among the feed's articles."""

    def __init__(self, feed: str, article: str | None):
        super().__init__(feed, article)
        self.feed = feed
        self.article = article


def _named_by(spec: FeedSpec, articles: list[Article], site_title: str) -> str | None:
    """The newest of `articles` whose section, tag or author is the name in `spec`'s title
    (`Site: Name`, feedsvc.render.catalog)."""
    for article in articles:
        names = (*article.section, *article.tags, *(person(a)[0] for a in article.authors))
        if any(spec.title == f"{site_title}: {name}" for name in names):
            return article.id
    return None


def __getattr__(name: str) -> type:
    """`Store` and `StoreUnavailable`, imported when first named: the store's library
    (SQLAlchemy) stays out of a web worker that serves only cache hits."""
    if name in ("Store", "StoreUnavailable"):
        import feedsvc.store

        found: type = getattr(feedsvc.store, name)
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FeedBuilder:
    """Renders a feed's documents from the store. Without a store given it opens the
    configured one on first use, so a web worker that only serves cache hits loads no
    SQLAlchemy (tests/test_hit_path_imports.py); likewise, without `documents` (the
    renderers: tests give ones that fail) it loads feedsvc.render on first use."""

    def __init__(self, settings: Settings, store: Store | None, cache: FeedCache | None, *,
                 documents: FeedDocuments | None = None):
        self.settings = settings
        self._store = store
        self.cache = cache
        self._given_documents = documents
        self._catalog: tuple[dict[str, str], dict[str, FeedSpec]] | None = None

    @functools.cached_property
    def store(self) -> Store:
        if self._store is not None:
            return self._store
        from feedsvc.store import Store

        return Store.from_settings(self.settings)

    @functools.cached_property
    def _documents(self) -> FeedDocuments:
        if self._given_documents is not None:
            return self._given_documents
        from feedsvc.render import FeedDocuments

        return FeedDocuments(self.settings)

    def catalog(self) -> dict[str, FeedSpec]:
        """The section feeds (and the site's) by path; built again only when the sections
        changed (500 sections take milliseconds, on every refresh and miss). Not to be
        modified: it is shared."""
        from feedsvc.render import build_catalog

        names = self.store.section_names()
        built = self._catalog
        if built is None or built[0] != names:
            built = self._catalog = (names, build_catalog(self.settings, names))
        return built[1]

    def _prepare(self, article: Article) -> Item | None:
        """`article` as its feeds carry it: whole, or excerpted (`feeds.content`)."""
        excerpted = self.settings.content_of(article.section_path) == "excerpt"
        return _prepare_or_skip(article, self.settings.excerpt_length if excerpted else None)
    def label_specs(self, paths: Iterable[str]) -> dict[str, FeedSpec]:
        """The tag and author feeds among `paths` (`tag/<slug>`) that articles have had."""
        from feedsvc.render import label_spec

        return {path: label_spec(self.settings, path, name)
                for path, name in self.store.label_names(paths).items()}

    def spec(self, path: str) -> FeedSpec | None:
        """The feed served at `path`, a tag's or an author's or else a section's (the site's
        for ''); None if there is no such feed."""
        if is_label_feed(path):
            return self.label_specs([path]).get(path)
        return self.catalog().get(path)

    def listed_labels(self) -> list[FeedSpec]:
        """The tag and author feeds the site documents list: the `listed_labels` most used of
        each kind by the newest articles (thousands of tags would bury the sections, and the
        bytes of each document would grow with them)."""
        from feedsvc.render import label_spec

        limit = self.settings.listed_labels
        return [label_spec(self.settings, path, name) for kind in LABEL_KINDS if limit
                for path, name in self.store.labels_in_use(kind, limit).items()]

    def build(self, spec: FeedSpec, now: datetime | None = None) -> dict[FeedKey, RenderedFeed]:
        """Every document of one feed: each format on each address."""
        with FEED_RENDERS.time():
            return self._build(spec, now)

    def _build(self, spec: FeedSpec, now: datetime | None) -> dict[FeedKey, RenderedFeed]:
        from feedsvc.render import History

        now = now or datetime.now(UTC)
        articles = self.store.newest(spec.path, self.settings.items_per_feed, now)
        # RFC 5005: the current feed leads to the archive of its newest month (the back-fill
        # goes on from there, month by month). Sections and the site have archives; tag and
        # author feeds do not.
        newest = (archive_path(spec.path, Month.of(articles[0].published))
                  if articles and not is_label_feed(spec.path) else None)
        spec = dataclasses.replace(spec, history=History(prev_archive=newest))
        return self._render(spec, articles, now)

    def _render(self, spec: FeedSpec, articles: list[Article], now: datetime,
                filenames: Iterable[str] = FEED_CONTENT_TYPES) -> dict[FeedKey, RenderedFeed]:
        from feedsvc.render import EPOCH, as_of

        items = [as_of(item, now) for item in map(self._prepare, articles) if item is not None]
        updated = max((i.updated for i in items), default=EPOCH)
        try:
            documents = self._documents.render(spec, items, filenames)
        except Exception as exc:
            raise RenderFailed(spec.path, _named_by(spec, articles,
                                                    self.settings.site_title)) from exc
        return {
            FeedKey(spec.path, fmt.filename, address): RenderedFeed.of(body, fmt.content_type,
                                                                       updated)
            for (address, fmt), body in documents.items()
        }

    def build_archive(self, path: str,
                      now: datetime | None = None) -> dict[FeedKey, RenderedFeed] | None:
        """The RFC 5005 archive documents at `path` (`<feed>/archive/<YYYY-MM>`, every
        archive format on every address): every published article of that feed in that month,
        without a limit; None when `path` is no month of a known feed with articles in it."""
        from feedsvc.render import FeedSpec, History

        parsed = parse_archive_path(path)
        if parsed is None:
            return None
        feed, month = parsed
        now = now or datetime.now(UTC)
        current = self.catalog().get(feed) if month.start <= now else None
        if current is None:
            return None
        with FEED_RENDERS.time():
            articles = self.store.published_in(feed, month.start, month.end, now)
            if not articles:
                return None
            before, after = self.store.published_around(feed, month.start, month.end, now)
            history = History(
                current=feed,
                prev_archive=archive_path(feed, Month.of(before)) if before else None,
                next_archive=archive_path(feed, Month.of(after)) if after else None)
            spec = FeedSpec(path, f"{current.title} ({month})", current.description, history)
            return self._render(spec, articles, now, ARCHIVE_FORMATS)

    def build_site(
        self, catalog: dict[str, FeedSpec] | None = None, now: datetime | None = None
    ) -> dict[FeedKey, RenderedFeed]:
        """The site documents (OPML, index page, address list) on every address, listing the
        catalog's feeds and the most used tags' and authors'; they change when the site feed
        does."""
        from feedsvc.render import EPOCH

        catalog = catalog or self.catalog()
        now = now or datetime.now(UTC)
        newest = self.store.newest("", 1, now)
        updated = max((updated_as_of(a.published, a.updated, now) for a in newest), default=EPOCH)
        return {
            FeedKey("", document.filename, address): RenderedFeed.of(body, document.content_type,
                                                                     updated)
            for (address, document), body in self._documents.render_site(
                [*catalog.values(), *self.listed_labels()]).items()
        }
