"""Refreshes against the real store and Redis: incremental picks exactly the touched feeds,
never skips a change, and only the lease holder among schedulers refreshes."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import feedparser
import psycopg
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner

from clocks import ShiftedClock
from conftest import free_port
from feedsvc.build import FeedBuilder
from feedsvc.cache import CacheUnavailable, FeedKey, MemoryCache, RedisCache
from feedsvc.cache.lease import LeaderLock
from feedsvc.cli import main
from feedsvc.ingest.document import parse_article
from feedsvc.refresh import Refresher
from feedsvc.refresh.scheduler import POLL_WITHOUT_ANNOUNCEMENTS
from feedsvc.render.items import item_id
from feedsvc.store import Store
from feedsvc.wiring import refresh_service as RefreshService

ORIGIN = "https://news.example"


def article(settings, article_id, section="News/Turkey", published=None, **fields):
    published = published or datetime(2026, 11, 1, 10, tzinfo=UTC)
    return parse_article({
        "id": article_id, "url": f"/a/{article_id}", "section": section,
        "title": fields.pop("title", f"Title {article_id}"),
        "published": published.isoformat(), **fields,
    }, origin=settings.origin, timezone=settings.timezone)


def ids_in(cache, path, filename="rss.xml"):
    entry = cache.get(FeedKey(path, filename, ORIGIN))
    return [e.id for e in feedparser.parse(entry.body).entries]


@pytest.fixture
def refresher(settings, store, redis_cache):
    store.upsert([article(settings, "base-turkey"), article(settings, "base-world", "World")])
    refresher = Refresher(FeedBuilder(settings, store, redis_cache), clock=ShiftedClock())
    refresher.full()
    return refresher


def test_incremental_renders_only_the_touched_feeds(settings, store, redis_cache, refresher):
    world_before = redis_cache.get(FeedKey("world", "atom.xml", ORIGIN)).etag
    store.upsert([article(settings, "new", published=datetime(2026, 11, 2, tzinfo=UTC))])
    report = refresher.incremental()
    assert report.kind == "incremental" and report.changes == 1
    assert report.feeds == 3  # news/turkey, news, the site
    for path in ("news/turkey", "news", ""):
        assert ids_in(redis_cache, path)[0] == item_id("new")
    assert redis_cache.get(FeedKey("world", "atom.xml", ORIGIN)).etag == world_before
    # every address of each touched feed is a WebSub topic
    assert set(report.changed_urls) >= {
        f"{origin}/feeds/news/turkey/rss.xml" for origin in settings.addresses}
    assert not any("/world/" in url for url in report.changed_urls)
    # nothing new: nothing rendered again, though the overlap window re-reads the change
    again = refresher.incremental()
    assert (again.changes, again.feeds, again.changed_urls) == (0, 0, ())


def test_the_sections_changes_are_filed_in_are_published_first_and_together(
        settings, store, redis_cache, refresher):
    """An article moving from one desk to another: both desks in one transaction, before the
    feeds above them, so that a desk's readers are not kept waiting for the site feed's
    rendering, and the article never appears in both desks or in neither."""
    published: list[set[str]] = []
    put_many = redis_cache.put_many
    redis_cache.put_many = lambda entries: (
        published.append({key.path for key in entries}), put_many(entries))
    store.upsert([article(settings, "base-turkey", "World/Sport")])
    report = refresher.incremental()
    assert report.feeds == 5
    # (the site feed's bytes do not change: the article is in it before and after; a new
    # section changes the site documents, published last)
    assert published == [{"news/turkey", "world/sport"}, {"news", "world"}, {""}]
    assert ids_in(redis_cache, "world/sport") == [item_id("base-turkey")]
    assert item_id("base-turkey") not in ids_in(redis_cache, "news/turkey")


def test_delete_and_move_leave_the_old_feeds(settings, store, redis_cache, refresher):
    store.upsert([article(settings, "base-turkey", status="deleted")])
    store.upsert([article(settings, "base-world", "News/Iran")])
    report = refresher.incremental()
    assert report.changes == 2
    assert item_id("base-turkey") not in ids_in(redis_cache, "news/turkey")
    assert item_id("base-turkey") not in ids_in(redis_cache, "")
    assert ids_in(redis_cache, "world") == []
    assert ids_in(redis_cache, "news/iran") == [item_id("base-world")]


def test_changes_in_one_batch_share_a_timestamp_and_are_all_seen(settings, store, redis_cache,
                                                                 refresher):
    store.upsert([article(settings, f"same-{i}", "World") for i in range(3)])
    assert len({c.changed_at for c in store.changed_since(datetime.now(UTC)
                                                          - timedelta(minutes=1))
                if c.id.startswith("same-")}) == 1
    assert refresher.incremental().changes == 3
    assert {item_id(f"same-{i}") for i in range(3)} <= set(ids_in(redis_cache, "world"))


def test_an_embargoed_article_appears_when_its_time_comes(settings, store, redis_cache,
                                                          refresher):
    due = refresher.clock() + timedelta(seconds=1.5)
    store.upsert([article(settings, "embargoed", "World", published=due)])
    refresher.incremental()
    assert item_id("embargoed") not in ids_in(redis_cache, "world")
    refresher.clock.advance(1.7)
    report = refresher.incremental()  # no new change: the publication time alone brings it in
    assert report.changes == 0 and report.feeds == 2  # world and the site
    assert ids_in(redis_cache, "world")[0] == item_id("embargoed")


class _FailingOnce(MemoryCache):
    """A cache whose next write fails, as Redis going away mid-publish would."""

    fail_next = False

    def put_many(self, entries):
        if self.fail_next:
            self.fail_next = False
            raise CacheUnavailable("connection reset")
        super().put_many(entries)


def test_a_failed_publish_does_not_advance_the_watermark(settings, store):
    cache = _FailingOnce()
    refresher = Refresher(FeedBuilder(settings, store, cache))
    refresher.full()
    store.upsert([article(settings, "lost?", "World")])
    cache.fail_next = True
    with pytest.raises(CacheUnavailable):
        refresher.incremental()
    report = refresher.incremental()
    assert report.changes == 1
    assert ids_in(cache, "world") == [item_id("lost?")]


def test_a_change_committed_late_inside_the_overlap_is_not_skipped(settings, store, redis_cache,
                                                                   refresher):
    """An importer whose clock lags (or whose transaction commits late) writes a change stamped
    before the watermark; the overlap window still finds it."""
    from feedsvc.refresh.refresher import Watermark

    mark = Watermark.from_json(redis_cache.get_state("watermark"))
    ahead = dataclasses.replace(mark, at=mark.at + timedelta(seconds=5))  # our clock ran ahead
    redis_cache.set_state("watermark", ahead.to_json())
    store.upsert([article(settings, "late", "World")])
    assert refresher.incremental().changes == 1
    assert item_id("late") in ids_in(redis_cache, "world")


def test_no_watermark_means_a_full_refresh(settings, store, redis_cache):
    store.upsert([article(settings, "x", "World")])
    report = Refresher(FeedBuilder(settings, store, redis_cache)).incremental()
    assert report.kind == "full" and report.feeds == 6


def test_only_one_lease_holder(redis_client, redis_prefix):
    first = LeaderLock(redis_client, f"{redis_prefix}leader", lease=1)
    second = LeaderLock(redis_client, f"{redis_prefix}leader", lease=1)
    assert first.hold() and not second.hold()
    assert first.hold()  # renewing one's own lease
    first.release()
    assert second.hold() and not first.hold()
    time.sleep(1.2)  # the holder stops renewing (it died): the lease runs out
    assert first.hold() and not second.hold()


def test_a_leader_deposed_mid_refresh_publishes_nothing_and_says_so_once(
        settings, postgres_url, redis_client, redis_prefix, caplog):
    """The refresh holds the lease, then waits on the store (a table lock here, a pause or a
    slow query in life) past its term; a rival takes the lead. Its writes are refused, and it
    stops with one warning, no traceback and nothing published."""
    settings = dataclasses.replace(settings, database_url=postgres_url, leader_lease=1)
    store = Store(postgres_url)
    store.upsert([article(settings, "a1")])
    cache = RedisCache(redis_client, redis_prefix)
    service = RefreshService(settings, FeedBuilder(settings, store, cache), BackgroundScheduler())
    rival = RedisCache(redis_client, redis_prefix).leader_lease(1)
    try:
        with psycopg.connect(postgres_url) as blocker:
            blocker.execute("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
            refresh = threading.Thread(target=service.refresh, args=["full"])
            refresh.start()
            deadline = time.monotonic() + 10
            # the refresh took the lease and now waits on the lock (the rival must not take the
            # lease before the refresh has)
            while not blocker.execute("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                      "AND relation = 'articles'::regclass").fetchone()[0]:
                assert time.monotonic() < deadline, "the refresh never waited on the store"
                time.sleep(0.05)
            while not rival.hold():  # the refresh's lease runs out while it waits
                assert time.monotonic() < deadline, "the lease never expired"
                time.sleep(0.1)
        refresh.join(30)
        assert not refresh.is_alive()
        warned = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
        assert len(warned) == 1 and warned[0].startswith(
            "full refresh stopped, nothing more published: "), warned
        assert "Traceback" not in caplog.text
        assert cache.get(FeedKey("", "rss.xml", settings.origin)) is None
    finally:
        rival.release()
        store.close()


def test_site_documents_are_rendered_again_only_when_the_feed_list_changes(
        settings, store, redis_cache, refresher):
    opml = FeedKey("", "feeds.opml", ORIGIN)
    store.upsert([article(settings, "same-list")])
    report = refresher.incremental()
    assert report.documents == 3 * 4 * 3  # three feeds, four formats, three addresses
    store.upsert([article(settings, "new-section", "World/Sport")])
    report = refresher.incremental()
    assert report.documents == 3 * 4 * 3 + 3 * 3  # ... and OPML, index, mirrors on each
    assert b"/feeds/world/sport/rss.xml" in redis_cache.get(opml).body


def test_unchanged_documents_are_kept_alive_not_compressed_and_written_again(
        settings, store, redis_client, redis_cache, refresher):
    written: list[int] = []
    put_many = redis_cache.put_many
    redis_cache.put_many = lambda entries: (written.append(len(entries)), put_many(entries))
    key = redis_cache.redis_key(FeedKey("world", "atom.xml", ORIGIN))
    redis_client.expire(key, 100)
    assert refresher.full().changed_urls == ()
    assert written and sum(written) == 0  # the feeds and the site documents: nothing new
    assert redis_client.ttl(key) > 100  # but its lifetime starts again
    store.upsert([article(settings, "one", "World")])
    refresher.incremental()
    # world, then the site feed, on every address, in every format but Roku's (no video in it)
    assert written[-2:] == [3 * 3, 3 * 3]


def test_after_a_bulk_import_only_the_first_refresh_is_a_full_one(
        settings, store, refresher, monkeypatch):
    import feedsvc.refresh.refresher as module

    monkeypatch.setattr(module, "MAX_INCREMENTAL_CHANGES", 10)
    monkeypatch.setattr(module, "REMEMBERED_CHANGES", 40)
    store.upsert([article(settings, f"bulk-{n}", "World") for n in range(25)])
    assert refresher.incremental().kind == "full"  # 25 new changes: more than 10
    again = refresher.incremental()  # the 25 are still in the overlap window, but rendered
    assert (again.kind, again.changes, again.feeds) == ("incremental", 0, 0)
    store.upsert([article(settings, "one-more", "World")])
    assert refresher.incremental().changes == 1


class _PausingCache(MemoryCache):
    """A cache whose writes wait until `go` is set, holding a refresh mid-publish."""

    def __init__(self):
        super().__init__()
        self.writing, self.go = threading.Event(), threading.Event()

    def put_many(self, entries):
        self.writing.set()
        self.go.wait(10)
        super().put_many(entries)


def test_an_import_during_a_triggered_refresh_triggers_another(settings, store):
    cache = _PausingCache()
    cache.go.set()
    service = RefreshService(settings, FeedBuilder(settings, store, cache), BackgroundScheduler())
    service.refresher.full()
    service.start(run_now=False)
    try:
        cache.go.clear()
        cache.writing.clear()
        store.upsert([article(settings, "first", "World")])
        service.trigger()
        assert cache.writing.wait(10)  # the first refresh has read the store and is publishing
        store.upsert([article(settings, "second", "World")])
        service.trigger()  # the import's announcement, while that refresh runs
        cache.go.set()
        # well before any timer: the next refresh is a minute away, the lease check 5 s
        deadline = time.monotonic() + 3
        while item_id("second") not in ids_in(cache, "world"):
            assert time.monotonic() < deadline, "the second import waits for a timer"
            time.sleep(0.05)
    finally:
        cache.go.set()
        service.shutdown()


def test_without_redis_an_import_by_another_process_is_found_within_seconds(settings, store):
    """No Redis, so no announcement reaches `feedsvc serve` from a `feedsvc import` beside
    it: its incremental refresh then looks for changes every couple of seconds, not every
    `refresh_interval` (a minute here)."""
    cache = MemoryCache()
    # (a long lease too: taking the lead triggers a refresh, which would find the import)
    settings = dataclasses.replace(settings, refresh_interval=60, leader_lease=300)
    service = RefreshService(settings, FeedBuilder(settings, store, cache), BackgroundScheduler())
    service.refresher.full()
    service.start(run_now=False)
    try:
        store.upsert([article(settings, "imported-elsewhere", "World")])  # and no trigger()
        deadline = time.monotonic() + 3 * POLL_WITHOUT_ANNOUNCEMENTS
        while item_id("imported-elsewhere") not in ids_in(cache, "world"):
            assert time.monotonic() < deadline, "the import waits for the minute's refresh"
            time.sleep(0.05)
    finally:
        service.shutdown()


def test_the_overlap_window_moves_on_with_the_clock(settings, store):
    """Changes are re-read for `change_overlap` seconds (late commits), not for as long as no
    newer change comes: a bulk import stops being re-read by every refresh."""
    from feedsvc.refresh.refresher import Watermark

    cache = MemoryCache()
    clock = ShiftedClock()
    refresher = Refresher(FeedBuilder(dataclasses.replace(settings, change_overlap=1), store,
                                       cache), clock=clock)
    refresher.full()
    store.upsert([article(settings, f"bulk-{n}", "World") for n in range(3)])
    assert refresher.incremental().changes == 3
    assert len(Watermark.from_json(cache.get_state("watermark")).seen) == 3
    clock.advance(2.2)  # two overlaps: those changes are committed and rendered for sure
    refresher.incremental()
    assert Watermark.from_json(cache.get_state("watermark")).seen == frozenset()


def test_the_refresh_command_names_an_unreachable_store_in_one_line(tmp_path):
    """`feedsvc refresh` (cron's) with the store down: exit 1 and one line saying which part
    failed, no traceback. (The cache's counterpart, a Sentinel refusing the password, is in
    test_topology_sentinel.py.)"""
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    result = CliRunner().invoke(main, ["refresh"], env={"DATABASE_URL": down, "REDIS_URL": None,
                                                        "FEEDSVC_CONFIG": None})
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    last = result.output.splitlines()[-1]
    assert last.startswith("Error: refresh failed, store unavailable: connection failed")
    assert "Connection refused Is the server running" in last  # the driver's lines, joined


def test_stopping_while_a_refresh_is_about_to_rearm_the_embargo_job_does_not_hang(settings,
                                                                                  store):
    """A refresh still running when the service stops re-arms the embargo job as it ends,
    which takes APScheduler's job store lock: stopping must not hold that lock while it waits
    for the refresh (it did, and the process hung at exit)."""
    cache = MemoryCache()
    settings = dataclasses.replace(settings, refresh_interval=60, leader_lease=300)
    service = RefreshService(settings, FeedBuilder(settings, store, cache), BackgroundScheduler())
    service.refresher.full()
    service.start(run_now=False)
    service._one_at_a_time.acquire()  # the triggered refresh waits here, before re-arming
    try:
        service.trigger()
        time.sleep(0.3)  # it is running, waiting
        stopping = threading.Thread(target=service.shutdown, daemon=True)
        stopping.start()
        time.sleep(0.3)  # the service is stopping: now the refresh goes on and re-arms
    finally:
        service._one_at_a_time.release()
    stopping.join(timeout=10)
    assert not stopping.is_alive(), "the service hangs while stopping"
