"""Redis losing keys under the service: evicted under `maxmemory`, or flushed."""

from __future__ import annotations

import time

import requests

from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, RedisCache
from feedsvc.refresh import Refresher
from topology import eventually

from .readers import HOSTS, Readers

# Two feeds (about 3.5 MB with every format, address and coding) fit in 5 MB of Redis; the six
# demo feeds (about 9 MB) do not.
HOT = ("/feeds/rss.xml", "/feeds/news/feed.json")
MAXMEMORY = "5mb"


def _renders(port: int) -> float:
    """How many misses the web process has rendered (all its workers)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    line = next(line for line in text.splitlines()
                if line.startswith("feedsvc_web_render_duration_seconds_count"))
    return float(line.split()[-1])


def _hot_keys(cache) -> list[str]:
    return [cache.redis_key(FeedKey(path[7:].rpartition("/")[0], path.rpartition("/")[2],
                                    f"https://{host}")) for path in HOT for host in HOSTS]


def _evicted(cache) -> int:
    """How many of the hot feeds lack a document the readers ask for."""
    keys = _hot_keys(cache)
    with cache.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(key)
        present = pipe.execute()
    return sum(not all(present[n:n + len(HOSTS)]) for n in range(0, len(keys), len(HOSTS)))


def _read_after(port: int, lose_keys, seconds: float = 3) -> tuple[float, float]:
    """Readers of the hot feeds after `lose_keys()`: the renders until they have asked for
    every document twice over (a few hundred milliseconds on a quiet machine, seconds on a
    busy one: a fixed wait missed renders there), and in the `seconds` after those."""
    start = _renders(port)
    lose_keys()
    rounds = 2 * len(HOT) * len(HOSTS)
    with Readers(port, feeds=HOT) as readers:
        eventually(lambda: readers.requests >= readers.threads * rounds, 60,
                   "the readers asked for every hot document twice")
        missed = _renders(port)
        time.sleep(seconds)
        settled = _renders(port)
    readers.assert_clean(at_least=rounds)
    return missed - start, settled - missed


def test_evicted_or_flushed_feeds_render_once_then_serve(deployment, private_redis):
    """With a `maxmemory` too small for every feed (allkeys-lru), Redis evicts feeds; a
    reader's miss renders the feed once (one render for all its formats and addresses,
    whatever the number of workers) and then it is served. Likewise after FLUSHALL. Every
    answer throughout is a whole, valid feed."""
    # Redis's LRU is approximate: each eviction picks the idlest of a few sampled keys, so with
    # the default 5 samples it sometimes evicts a document the web has just written, and the
    # next reader renders that feed a second time (1 run in about 12). The test is about the
    # web, not the approximation: sampling 64 keys, about all there are, makes the LRU exact.
    server = private_redis("--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "64")
    deployed = deployment(server, refresh_interval=60, leader_lease=2)
    deployed.scheduler()
    deployed.wait_for_refresh()
    # The limit comes after the start-up rebuild, so that every feed is in Redis first (a
    # rebuild into a Redis this small is the test below). Reading
    # every other document after a tick of Redis's LRU clock (1 s) makes the hot ones the
    # least recently used.
    time.sleep(1.1)
    hot = set(_hot_keys(deployed.cache))
    for key in deployed.cache.client.scan_iter(match=deployed.cache.feed_prefix + "*"):
        if key.decode() not in hot:
            deployed.cache.client.hget(key, "etag")
    server.client.config_set("maxmemory", MAXMEMORY)
    assert server.client.info("stats")["evicted_keys"] > 0
    evicted = _evicted(deployed.cache)
    assert evicted > 0
    port = deployed.web(workers=2)
    time.sleep(1.1)  # what the web writes is then a tick younger than every key left

    rendered, again = _read_after(port, lambda: None)
    assert rendered == evicted and again == 0
    rendered, again = _read_after(port, server.client.flushall)
    assert rendered == len(HOT) and again == 0


def test_a_refresh_larger_than_redis_memory_is_written_feed_by_feed(private_redis,
                                                                    demo_renderer):
    """Six feeds of documents (about 9 MB) in one transaction do not fit in a 5 MB Redis, which
    refuses such a write whole; the refresh then writes one feed per transaction (evicting
    older entries) instead of failing on every retry."""
    server = private_redis("--maxmemory", MAXMEMORY, "--maxmemory-policy", "allkeys-lru")
    cache = RedisCache(server.client, "lost-keys:")
    renderer = FeedBuilder(demo_renderer.settings, demo_renderer.store, cache)
    report = Refresher(renderer).full()
    assert report.feeds == 6 and len(report.changed_urls) == 6 * 4 * 3
    assert server.client.info("stats")["evicted_keys"] > 0  # it wrote more than fits
    assert any(server.client.scan_iter(match=cache.feed_prefix + "*"))
