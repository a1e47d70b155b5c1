"""Redis losing keys under the service: evicted under `maxmemory`, or flushed."""

from __future__ import annotations

import time

import requests

from feedsvc.cache import FeedKey

from .readers import HOSTS, Readers

# Two feeds (about 3.5 MB with every format, address and coding) fit in the 5 MB Redis; the
# six demo feeds (about 9 MB) do not, and these two are rendered first, so evicted first.
HOT = ("/feeds/rss.xml", "/feeds/news/feed.json")
MAXMEMORY = ("--maxmemory", "5mb", "--maxmemory-policy", "allkeys-lru")


def _renders(port: int) -> float:
    """How many misses the web process has rendered (all its workers)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    line = next(line for line in text.splitlines()
                if line.startswith("feedsvc_web_render_duration_seconds_count"))
    return float(line.split()[-1])


def _evicted(cache) -> int:
    """How many of the hot feeds lack a document the readers ask for."""
    keys = [FeedKey(path[7:].rpartition("/")[0], path.rpartition("/")[2], f"https://{host}")
            for path in HOT for host in HOSTS]
    with cache.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(cache.redis_key(key))
        present = pipe.execute()
    return sum(not all(present[n:n + len(HOSTS)]) for n in range(0, len(keys), len(HOSTS)))


def _read_after(port: int, lose_keys, seconds: float = 3) -> tuple[float, float]:
    """Readers of the hot feeds after `lose_keys()`: the renders in their first `seconds`,
    and in the `seconds` after those."""
    start = _renders(port)
    lose_keys()
    with Readers(port, feeds=HOT) as readers:
        time.sleep(seconds)
        missed = _renders(port)
        time.sleep(seconds)
        settled = _renders(port)
    readers.assert_clean(at_least=20)
    return missed - start, settled - missed


def test_evicted_or_flushed_feeds_render_once_then_serve(deployment, private_redis):
    """With a `maxmemory` too small for every feed (allkeys-lru), the scheduler's rebuild
    evicts feeds; a reader's miss renders the feed once (one render for all its formats and
    addresses, whatever the number of workers) and then it is served. Likewise after FLUSHALL.
    Every answer throughout is a whole, valid feed."""
    server = private_redis(*MAXMEMORY)
    deployed = deployment(server, refresh_interval=60, leader_lease=2)
    deployed.scheduler()
    deployed.wait_for_refresh()
    assert server.client.info("stats")["evicted_keys"] > 0
    evicted = _evicted(deployed.cache)
    assert evicted > 0
    port = deployed.web(workers=2)

    rendered, again = _read_after(port, lambda: None)
    assert rendered == evicted and again == 0
    rendered, again = _read_after(port, server.client.flushall)
    assert rendered == len(HOT) and again == 0
