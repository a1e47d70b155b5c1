"""The schedulers when Redis runs out of memory (`maxmemory` reached under `volatile-lru`, what
docs/deploy.md recommends): the leader lease is not evicted with the feeds, a deposed leader's
publish is refused, and a refresh into a full Redis publishes what fits and leaves no document
behind that the store has changed."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest
import redis
from apscheduler.schedulers.background import BackgroundScheduler

from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, LeaseLost, MemoryCache, RedisCache
from feedsvc.config import Settings, load_settings
from feedsvc.ingest.importer import Importer
from feedsvc.store import Store
from feedsvc.wiring import refresh_service as RefreshService
from processes import article_line
from topology import eventually

PREFIX = "pressure:"
VOLATILE_LRU = ("--maxmemory-policy", "volatile-lru")


def _scheduler(settings: Settings, store: Store, server) -> RefreshService:
    """A scheduler's refresh service on its own connection to `server` (not started: the
    test runs its steps)."""
    cache = RedisCache(redis.Redis(port=server.port), PREFIX)
    return RefreshService(settings, FeedBuilder(settings, store, cache), BackgroundScheduler())


def _fill_with_unevictable(server, megabytes: int = 8) -> None:
    """Keys without a lifetime, then a `maxmemory` below what they take: at the next write
    Redis evicts every key that has a lifetime and still refuses the write (OOM)."""
    for n in range(megabytes):
        server.client.set(f"unevictable:{n}", b"x" * 1_000_000)
    server.client.config_set("maxmemory", server.client.info("memory")["used_memory"] // 2)


def _relieve(server) -> None:
    server.client.config_set("maxmemory", 0)
    server.client.delete(*server.client.keys("unevictable:*"))


def _wrong_documents(cache: RedisCache, settings: Settings, store: Store) -> list[FeedKey]:
    """Feed documents in the cache whose bytes differ from a render of the store now."""
    clean = FeedBuilder(settings, store, MemoryCache())
    return [key for spec in clean.catalog().values()
            for key, document in clean.build(spec).items()
            if (entry := cache.get(key)) is not None and entry.etag != document.etag]


def _import(settings: Settings, store: Store, tmp_path, article_id: str, title: str) -> None:
    batch = tmp_path / f"{article_id}.jsonl"
    batch.write_text(article_line(article_id, title))
    assert Importer(settings, store, progress=False).import_paths([batch]).accepted == 1


def test_evicting_every_key_with_a_lifetime_leaves_the_lease_with_its_leader(private_redis,
                                                                            demo_renderer):
    server = private_redis(*VOLATILE_LRU)
    settings, store = demo_renderer.settings, demo_renderer.store
    first, second = _scheduler(settings, store, server), _scheduler(settings, store, server)
    assert first.leader.hold()
    first.refresh("full")
    _fill_with_unevictable(server)
    with pytest.raises(redis.OutOfMemoryError):
        server.client.set("one more", "x")
    assert server.client.info("stats")["evicted_keys"] >= 6 * 4 * 3  # the feeds went
    assert not second.leader.hold()  # the lease did not
    assert first.leader.hold()  # and its holder renews it while Redis refuses writes


def test_a_deposed_leaders_publish_is_refused(private_redis, demo_renderer, tmp_path):
    """The leader stalls past its lease between taking it and publishing (or, under
    allkeys-lru, the lease is evicted); another scheduler takes over and publishes a newer
    store. The first one's publish, when it comes, is refused: the cache holds the new
    leader's documents and watermark."""
    server = private_redis(*VOLATILE_LRU)
    settings = dataclasses.replace(demo_renderer.settings, leader_lease=1)
    store = demo_renderer.store
    first, second = _scheduler(settings, store, server), _scheduler(settings, store, server)
    assert first.leader.hold()
    first.writes.fence_now()  # as RefreshService.refresh does before refreshing
    time.sleep(1.2)  # stalled: the lease ends
    _import(settings, store, tmp_path, "newer-1", "Newer one")
    second.refresh("full")
    watermark = second.refresher.cache.get_state("watermark")
    with pytest.raises(LeaseLost):
        first.refresher.full()
    assert second.refresher.cache.get_state("watermark") == watermark
    assert _wrong_documents(RedisCache(server.client, PREFIX), settings, store) == []


def test_a_refresh_into_a_full_redis_publishes_what_fits_then_catches_up(
        private_redis, demo_renderer, tmp_path, caplog):
    """Redis full of keys it cannot evict refuses every write: the refresh does not fail, it
    leaves no document the store has changed, and once Redis has room again the next refresh
    publishes everything."""
    server = private_redis(*VOLATILE_LRU)
    settings, store = demo_renderer.settings, demo_renderer.store
    service = _scheduler(settings, store, server)
    cache = RedisCache(server.client, PREFIX)
    service.refresh("full")
    _import(settings, store, tmp_path, "pressed-1", "Pressed one")
    _fill_with_unevictable(server)
    service.refresh("incremental")
    assert "refresh failed" not in caplog.text, caplog.text
    assert re.search(r"do not fit in the cache", caplog.text), caplog.text
    assert _wrong_documents(cache, settings, store) == []
    _relieve(server)
    service.refresh("incremental")
    turkey = cache.get(FeedKey("news/turkey", "rss.xml", "https://news.example"))
    assert turkey is not None and b"Pressed one" in turkey.body
    assert _wrong_documents(cache, settings, store) == []


def test_two_schedulers_in_a_full_redis_keep_one_leader_and_no_wrong_document(
        deployment, private_redis, spawn, tmp_path):
    """The Procfile's two schedulers while Redis refuses writes and imports go on: the same
    one leads throughout (the other never takes over), no refresh fails, no document is left
    that the store has changed; with room again, the imports are in the feeds."""
    server = private_redis(*VOLATILE_LRU)
    deployed = deployment(server, refresh_interval=1, leader_lease=2)
    schedulers = [deployed.scheduler(), deployed.scheduler()]
    deployed.wait_for_refresh()
    _fill_with_unevictable(server)
    batch = tmp_path / "pressed.jsonl"
    for n in range(4):
        batch.write_text(article_line(f"pressed-{n}", f"Pressed {n}"))
        deployed.import_(batch)
        time.sleep(1.5)
    settings = load_settings(deployed.env["FEEDSVC_CONFIG"], environ=deployed.env)
    store = Store(settings.database_url)
    try:
        # the refresh after the last import drops what it changed but cannot write: within a
        # refresh or two (seconds; a busy machine took more than the 1.5 s the loop waits)
        eventually(lambda: _wrong_documents(deployed.cache, settings, store) == [], 15,
                   "no document the store has changed is left")
        _relieve(server)
        deadline = time.monotonic() + 15
        key = FeedKey("news/turkey", "rss.xml", "https://news.example")
        while not ((entry := deployed.cache.get(key)) and b"Pressed 3" in entry.body):
            assert time.monotonic() < deadline, "the imports never reached the feed"
            time.sleep(0.2)
        # the feeds above the section follow it in the refresh's next transaction
        eventually(lambda: _wrong_documents(deployed.cache, settings, store) == [], 15,
                   "the feeds above the section follow it")
    finally:
        store.close()
    logs = "".join(spawn.log(process) for process in schedulers)
    assert logs.count("takes the lead") == 1, logs
    assert "refresh failed" not in logs and "Traceback" not in logs, logs
    assert all(process.poll() is None for process in schedulers)
