"""Refreshes: what changed in the store becomes new bytes in the cache.

A full refresh renders every feed. An incremental one reads the changes since a watermark
(through the store's `changed_at` index, never a scan), plus the embargoed articles whose
publication time has come, and re-renders only the feeds those touch: each article's section,
its ancestors and the site, and the old section's when it moved; and of its tag and author feeds
(before and after the change), those readers polled within `feeds.tag_feed_idle_days`. The
others are not rendered (a site has thousands) but their cached documents are dropped, so a
reader who comes back gets them rendered afresh, never stale. A full refresh renders the
sections and the site, never the tag and author feeds. The watermark is kept in the
cache's state and advanced only after the new bytes are published. Each refresh re-reads
`change_overlap` seconds before the watermark — for clock skew between importers and
transactions that commit late — and skips the changes it has already rendered.

Each part of a refresh fails alone (feedsvc.refresh.failures): a feed that cannot be rendered
keeps its documents from before and the others are published; the site documents, and each
archive to drop, likewise; the watermark moves on. The next refresh that has something to
publish renders the failing feeds again. A section or a tag that no article is in any more is
no longer published: its documents are dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from tqdm import tqdm

from feedsvc.archives import ARCHIVE_FORMATS, Month, archive_path
from feedsvc.build import FeedBuilder
from feedsvc.cache import (
    CachedFeed,
    CacheFull,
    CacheUnavailable,
    FeedCache,
    FeedKey,
    RenderedFeed,
)
from feedsvc.cache.lease import LeaderWrites
from feedsvc.model import ancestor_paths, is_label_feed
from feedsvc.refresh.failures import STATE as FAILING
from feedsvc.refresh.failures import Failures, Stage
from feedsvc.refresh.metrics import REFRESH_DOCUMENTS, REFRESHES
from feedsvc.refresh.reach import record_freshness
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.formats import SITE_DOCUMENTS
from feedsvc.store import ChangedArticle
from feedsvc.urls import FEED_CONTENT_TYPES, feed_url

if TYPE_CHECKING:
    from feedsvc.store import ChangedArticle

log = logging.getLogger(__name__)
MAX_INCREMENTAL_CHANGES = 5_000  # more than this at once: a full refresh is cheaper
# How many changes of the overlap window a full refresh remembers as rendered: enough for a
# bulk import just before it, so the refreshes after it do not count those as new again.
REMEMBERED_CHANGES = 4 * MAX_INCREMENTAL_CHANGES
# Feeds published in one transaction (readers see all of them change at once, e.g. an article
# leaving one section and entering another); more are published in groups, to bound memory.
ATOMIC_FEEDS = 32
# Compresses documents beside the rendering thread: zlib and brotli release the interpreter lock.
_COMPRESSOR = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="compress")


# A full refresh re-renders every feed; an incremental one only those the latest changes touch.
RefreshKind = Literal["full", "incremental"]


@dataclass(frozen=True, slots=True)
class RefreshReport:
    kind: RefreshKind
    changes: int              # article changes read (full: every feed re-rendered)
    feeds: int
    documents: int
    seconds: float
    changed_urls: tuple[str, ...] = ()  # feed URLs whose bytes changed: WebSub topics

    def as_state(self) -> str:
        return json.dumps({"kind": self.kind, "finished_at": time.time(),
                           "seconds": round(self.seconds, 4), "feeds": self.feeds,
                           "documents": self.documents, "changes": self.changes})


def _fingerprint(catalog: dict[str, FeedSpec]) -> str:
    """Identifies the feed list as the site documents show it."""
    listed = sorted((s.path, s.title, s.description) for s in catalog.values())
    return hashlib.sha256(json.dumps(listed).encode()).hexdigest()


def _archive_months(changes: Iterable[ChangedArticle]) -> set[tuple[str, Month]]:
    """(feed, month) of each archive the changes alter: an article's month in each of its
    feeds, and before a move or a redating its old month in its old feeds."""
    months: set[tuple[str, Month]] = set()
    for change in changes:
        for section, published in (
                (change.section, change.published),
                (change.previous_section or change.section,
                 change.previous_published or change.published)):
            months.update((feed, Month.of(published)) for feed in ancestor_paths(section))
    return months


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far the refreshes have got: the newest change rendered (`at`), the changes already
    rendered in the overlap window before it, and the end of the last embargo window."""

    at: datetime
    seen: frozenset[tuple[str, str]]
    published_upto: datetime

    def to_json(self) -> str:
        return json.dumps({"at": self.at.isoformat(), "seen": sorted(self.seen),
                           "published_upto": self.published_upto.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> Watermark:
        raw = json.loads(text)
        return cls(datetime.fromisoformat(raw["at"]), frozenset(map(tuple, raw["seen"])),
                   datetime.fromisoformat(raw["published_upto"]))


class Refresher:
    def __init__(self, builder: FeedBuilder, *,
                 on_changed: Callable[[tuple[str, ...]], None] | None = None,
                 cache: FeedCache | LeaderWrites | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        """`cache`: where the refresh reads and writes, if not the builder's cache (a
        scheduler's fenced writes, feedsvc.cache.lease.LeaderWrites). `clock`: what "now" is
        for embargoes, the overlap window and the feeds' dates (injected by tests)."""
        self.builder = builder
        self.clock = clock
        cache = builder.cache if cache is None else cache
        if cache is None:
            raise ValueError("a refresh needs a cache to publish to")
        self.cache: FeedCache | LeaderWrites = cache
        self.store = builder.store
        self.overlap = timedelta(seconds=builder.settings.change_overlap)
        self._refusals = 0  # publishes that left a feed out of the cache (it was too full)
        self.idle = timedelta(days=builder.settings.tag_feed_idle_days)
        self.on_changed = on_changed
        self.failures = Failures(None)  # the current refresh's: loaded as it starts

    def full(self, *, progress: bool = False) -> RefreshReport:
        """Render and publish every feed (first start, drift repair, `feedsvc refresh`)."""
        self.failures = Failures(self.cache.get_state(FAILING))
        return self._full(progress)

    @contextmanager
    def contained(self, stage: Stage) -> Iterator[None]:
        """A part of a refresh job beside the refresh itself (the scheduler's embargo timer),
        contained and noted like the refresh's own parts."""
        self.failures = Failures(self.cache.get_state(FAILING))
        with self.failures.contain(stage):
            yield
        self._record_failures()

    def _full(self, progress: bool = False) -> RefreshReport:
        started = time.perf_counter()
        now = self.clock()
        # Read before rendering, so these changes are in what is rendered and need no second
        # pass; a change that commits later is not listed and the next refresh finds it.
        recent = self.store.changed_since(now - self.overlap, REMEMBERED_CHANGES)
        catalog = self.builder.catalog()
        with tqdm(total=len(catalog), desc="feeds", unit="feed", disable=not progress) as bar:
            changed, documents = self._publish_feeds(list(catalog.values()), now, bar.update)
        self._drop_feeds({path for path in self.failures.feeds
                          if not is_label_feed(path) and path not in catalog})
        documents += self._publish_site(catalog, now)
        self.cache.forget_polls_before((now - self.idle).timestamp())
        seen = frozenset((c.id, c.changed_at.isoformat()) for c in recent)
        self._record("watermark", Watermark(now, seen, now).to_json())
        report = RefreshReport("full", 0, len(catalog), documents,
                               time.perf_counter() - started, tuple(changed))
        return self._finish(report)

    def incremental(self) -> RefreshReport:
        """Re-render just the feeds that changed since the watermark (a full refresh when
        there is no watermark yet, or too many changes to be worth picking)."""
        started = time.perf_counter()
        state = self.cache.get_state("watermark")
        if state is None:
            return self.full()
        self.failures = Failures(self.cache.get_state(FAILING))
        mark = Watermark.from_json(state)
        now = self.clock()
        refusals = self._refusals
        # Only changes not rendered yet count: the window's already rendered ones (a bulk
        # import's, say) are read again but must not make every refresh a full one.
        changes = self.store.changed_since(mark.at - self.overlap,
                                           MAX_INCREMENTAL_CHANGES + len(mark.seen) + 1)
        fresh = [c for c in changes if (c.id, c.changed_at.isoformat()) not in mark.seen]
        if len(fresh) > MAX_INCREMENTAL_CHANGES:
            # A full refresh renders the current feeds; the archives these changes alter are
            # rendered on request (the months of the changes read here; those beyond, when
            # their cache entries expire).
            self._drop_archives(_archive_months(fresh), fresh, set(), now)
            # Too many to list their tag and author feeds (some are not even read): every
            # polled one is dropped, to be rendered on its next request.
            self._drop_feeds(self.cache.polled((now - self.idle).timestamp()))
            catalog = self.builder.catalog()
            self._drop_feeds(set().union(*(c.feeds for c in fresh)) - catalog.keys())
            return self._full()
        paths: set[str] = set().union(*(c.feeds for c in fresh))
        due = self.store.published_between(mark.published_upto, now)
        for section in due:
            paths.update(ancestor_paths(section))
        # With something to publish, what failed before is tried again.
        retrying = bool(fresh or due)
        retry = set(self.failures.feeds) if retrying else set()
        paths |= {path for path in retry if not is_label_feed(path)}
        catalog = self.builder.catalog() if paths else {}
        touched = sorted(paths & catalog.keys())  # a section beside its subsections
        self._drop_feeds(paths - catalog.keys())  # no article is in them any more
        labels = self._polled_label_feeds(fresh, mark.published_upto, now,
                                          {path for path in retry if is_label_feed(path)})
        # The sections the changes are filed in (before and after a move, and those with
        # articles coming due) first, in one transaction, so that a desk's readers get its
        # article a render of the feeds above it sooner; then those feeds, and the tag and
        # author feeds.
        filed = {c.section for c in fresh} | {c.previous_section for c in fresh} | set(due)
        changed, documents = self._publish_feeds(
            [catalog[path] for path in touched if path in filed], now)
        above, more = self._publish_feeds(
            [catalog[path] for path in touched if path not in filed] + labels, now)
        changed += above
        documents += more
        if fresh:
            self._record_freshness(max(c.changed_at for c in fresh), len(touched) + len(labels))
        # Embargoed articles now due enter the months the embargo window ends in.
        arrived = {(feed, Month.of(end)) for section in due for feed in ancestor_paths(section)
                   for end in (mark.published_upto, now)}
        self._drop_archives(_archive_months(fresh) | arrived, fresh, arrived, now)
        # The site documents list the feeds: they change only when the catalog does (or are
        # tried again, having failed).
        if paths and (_fingerprint(catalog) != self.cache.get_state("catalog")
                      or (retrying and "site" in self.failures.stages)):
            documents += self._publish_site(catalog, now)
        # The mark follows the newest change, and the clock: a change stamped more than two
        # overlaps before now has been committed and read (or the overlap is too short), so
        # the window stops re-reading an old bulk import once no newer change comes.
        at = max([mark.at, now - self.overlap, *(c.changed_at for c in changes)])
        seen = frozenset((c.id, c.changed_at.isoformat()) for c in changes
                         if c.changed_at >= at - self.overlap)
        if self._refusals == refusals:
            self._record("watermark", Watermark(at, seen, now).to_json())
        else:  # a feed is out of the cache: the next refresh publishes these changes again
            log.warning("refresh state watermark not recorded: feeds did not fit in the cache, "
                        "the next refresh repeats this one")
        report = RefreshReport("incremental", len(fresh), len(touched) + len(labels),
                               documents, time.perf_counter() - started, tuple(changed))
        return self._finish(report)

    def _drop_archives(self, months: set[tuple[str, Month]], changes: list[ChangedArticle],
                       arrived: set[tuple[str, Month]], now: datetime) -> None:
        """Remove the cached RFC 5005 archive documents of `months` (feed, month), rendered
        again on their next request (feedsvc.build). The months beside one go too when it may
        have gained its first article or lost its last (their prev/next links name it): when
        it is empty now, holds nothing but `changes`, or embargoed articles `arrived` in it."""
        changed = {c.id for c in changes}
        paths = set()
        for feed, month in sorted(months):
            with self.failures.contain("archives", archive_path(feed, month)):
                found = {archive_path(feed, month)}
                held = self.store.ids_published_in(feed, month.start, month.end,
                                                   len(changed) + 1, now)
                if (feed, month) in arrived or set(held) <= changed:
                    around = self.store.published_around(feed, month.start, month.end, now)
                    found.update(archive_path(feed, Month.of(when)) for when in around if when)
                paths |= found
        self.failures.ran("archives")
        if not paths:
            return
        addresses = self.builder.settings.addresses
        self.cache.discard([FeedKey(path, filename, address) for path in sorted(paths)
                            for filename in ARCHIVE_FORMATS for address in addresses])
        log.debug("archives dropped from the cache: %s", ", ".join(sorted(paths)))

    def _polled_label_feeds(self, fresh: list[ChangedArticle], after: datetime,
                            now: datetime, retry: set[str]) -> list[FeedSpec]:
        """The tag and author feeds that `fresh` changes and the articles coming due in
        (after, now] touch and that readers polled within the idle time, and those of `retry`
        (they failed): to re-render. The cached documents of the others are dropped, as are
        those of the feeds no article is in any more."""
        paths = set().union(*(c.label_feeds for c in fresh))
        paths |= self.store.label_feeds_published_between(after, now)
        if not paths and not retry:
            return []
        polled = self.cache.polled_since(paths, (now - self.idle).timestamp()) if paths else set()
        specs = self.builder.label_specs(polled | retry)
        self._drop_feeds((paths | retry) - specs.keys())
        return [spec for _, spec in sorted(specs.items())]

    def _drop_feeds(self, paths: set[str]) -> None:
        """Delete the cached documents of the feeds `paths` (rendered on request, or gone):
        no longer published, they are not failing either."""
        addresses = self.builder.settings.addresses
        if paths:
            self.cache.discard(FeedKey(path, filename, address) for path in sorted(paths)
                               for filename in FEED_CONTENT_TYPES for address in addresses)
        for path in paths:
            self.failures.forget_feed(path)

    def _publish_site(self, catalog: dict[str, FeedSpec], now: datetime) -> int:
        """Publish the site documents listing `catalog`; the number published. Should they
        fail to render, those from before are kept alive and served."""
        site: dict[FeedKey, RenderedFeed] = {}
        with self.failures.contain("site"):
            site = self.builder.build_site(catalog, now)
        if not site:
            self.cache.keep(FeedKey("", filename, address) for filename in SITE_DOCUMENTS
                            for address in self.builder.settings.addresses)
            return 0
        self._publish(site, site.items())
        self._record("catalog", _fingerprint(catalog))
        return len(site)

    def _publish_feeds(self, specs: list[FeedSpec], now: datetime,
                       progress: Callable[[int], object] | None = None) -> tuple[list[str], int]:
        """Render and publish the feeds `specs`, `ATOMIC_FEEDS` per transaction; return the
        URLs of the feeds that changed and the number of documents rendered."""
        addresses = self.builder.settings.addresses
        changed: list[str] = []
        documents = 0
        for start in range(0, len(specs), ATOMIC_FEEDS):
            group = specs[start:start + ATOMIC_FEEDS]
            keys = [FeedKey(spec.path, filename, address)
                    for spec in group for filename in FEED_CONTENT_TYPES for address in addresses]
            rendered = (item for spec in group for item in self._render(spec, now).items())
            changed += self._publish(keys, rendered)
            documents += len(keys)
            if progress:
                progress(len(group))
        return changed, documents

    def _render(self, spec: FeedSpec, now: datetime) -> dict[FeedKey, RenderedFeed]:
        """The documents of the feed `spec`; none should it fail (its documents from before,
        not rewritten, are kept alive by `_publish`)."""
        with self.failures.contain("feed", spec.path):
            return self.builder.build(spec, now)
        return {}

    def _publish(self, keys: Iterable[FeedKey],
                 documents: Iterable[tuple[FeedKey, RenderedFeed]]) -> list[str]:
        """Publish `documents` (the ones under `keys`, possibly still being rendered): each
        whose bytes changed is compressed on a worker thread as soon as it arrives (zlib and
        brotli release the interpreter lock) while the next renders; all are written in one
        MULTI/EXEC (one per feed if that is more than Redis has memory for: what fits), and
        the unchanged ones kept alive. Returns the URLs of the feeds that changed."""
        current = self.cache.etags(keys)
        compressing = {key: _COMPRESSOR.submit(document.compress)
                       for key, document in documents if current[key] != document.etag}
        changed = {key: job.result() for key, job in compressing.items()}
        try:
            self.cache.put_many(changed)
        except CacheFull as exc:
            log.warning("%d documents do not fit in the cache at once (%s): one feed at a time",
                        len(changed), exc)
            self._publish_each_feed(changed)
        self.cache.keep(key for key in current if key not in changed)
        return [feed_url(key.origin, key.path, key.filename)
                for key in changed if key.filename in FEED_CONTENT_TYPES]

    def _publish_each_feed(self, changed: dict[FeedKey, CachedFeed]) -> None:
        """Publish `changed` a feed per write: what fits goes in. A feed that does not fit
        loses its old documents (Redis allows deletions when full), so readers get it rendered
        from the store rather than the bytes from before the change."""
        paths = {key.path for key in changed}
        refused = []
        for path in paths:
            feed = {k: e for k, e in changed.items() if k.path == path}
            try:
                self.cache.put_many(feed)
            except CacheFull:
                self.cache.discard(feed)
                refused.append(path or "(site)")
        if refused:
            self._refusals += 1
            log.warning("%d of %d feeds do not fit in the cache, their old documents removed "
                        "(readers get them rendered): %s", len(refused), len(paths),
                        ", ".join(sorted(refused)))

    def _record(self, name: str, value: str) -> None:
        """Keep refresh state (watermark, catalog fingerprint). When Redis is too full to
        take it, the refresh's documents stay published and the next refresh, finding the
        state where it was, does this one's work again."""
        try:
            self.cache.set_state(name, value)
        except CacheFull as exc:
            log.warning("refresh state %s not recorded, the next refresh repeats this one: %s",
                        name, exc)

    def _record_freshness(self, newest_change: datetime, feeds: int) -> None:
        """How long after its newest change's commit this refresh published (the operator
        page's freshness chart); a failure to record it costs only the record."""
        try:
            record_freshness(self.cache, newest_change, self.clock(), feeds)
        except (CacheFull, CacheUnavailable) as exc:
            log.warning("refresh freshness not recorded: %s", exc)

    def _record_failures(self) -> None:
        """Keep what is failing (feedsvc.refresh.failures) when this refresh changed it."""
        if self.failures.changed:
            self._record(FAILING, self.failures.to_state())

    def _finish(self, report: RefreshReport) -> RefreshReport:
        self._record_failures()
        REFRESHES.labels(report.kind).observe(report.seconds)
        REFRESH_DOCUMENTS.labels("rendered").inc(report.documents)
        REFRESH_DOCUMENTS.labels("changed").inc(len(report.changed_urls))
        # A refresh that found nothing to do is routine (without Redis, one every few
        # seconds): not worth a line unless asked for.
        level = logging.INFO if report.documents else logging.DEBUG
        log.log(level, "%s refresh: %d changes, %d feeds, %d documents (%d changed) in %.2fs",
                report.kind, report.changes, report.feeds, report.documents,
                len(report.changed_urls), report.seconds)
        try:
            self.cache.set_state("refresh", report.as_state())
        except CacheUnavailable as exc:  # the refresh itself succeeded; only the record is lost
            log.warning("could not record the refresh: %s", exc)
        if report.changed_urls and self.on_changed:
            self.on_changed(report.changed_urls)
        return report

