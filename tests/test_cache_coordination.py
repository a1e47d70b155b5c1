"""The cache offers what the refresh needs besides entries (a leader lease with fenced writes,
an announce/listen channel, named state), in Redis and in process alike: the refresh asks the
cache for them instead of reaching into its Redis client."""

from __future__ import annotations

import ast
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import ROOT
from feedsvc.cache import FeedKey, LeaseLost, MemoryCache, RedisCache, RenderedFeed
from topology import eventually

# What only feedsvc/cache may know about the Redis cache: its type, client and key prefix.
REDIS_CACHE = "RedisCache"
REDIS_INTERNALS = {"client", "prefix", "keyspace"}


def test_schedulers_on_one_redis_share_one_lease_and_hear_each_others_announcements(
        redis_client, redis_prefix):
    first, second = RedisCache(redis_client, redis_prefix), RedisCache(redis_client, redis_prefix)
    leases = [first.leader_lease(5), second.leader_lease(5)]
    assert [lease.hold() for lease in leases] == [True, False]
    writes = first.fenced_writes(leases[0])
    writes.fence_now()
    entry = RenderedFeed.of(b"<rss/>", "application/rss+xml", datetime.now(UTC)).compress()
    writes.put_many({FeedKey("world", "rss.xml", "https://a.example"): entry})
    leases[0].release()
    assert leases[1].hold()
    with pytest.raises(LeaseLost):  # the first one's lease is gone: its writes are refused
        writes.set_state("watermark", "late")
    heard = threading.Event()
    listener = second.listen(heard.set)
    assert listener is not None
    listener.start()
    try:
        eventually(lambda: first.announce("import") or heard.wait(0.2), 10, "the announcement")
    finally:
        listener.stop()
        leases[1].release()


def test_the_in_process_cache_always_leads_and_writes_unfenced():
    cache = MemoryCache()
    lease = cache.leader_lease(5)
    assert lease.hold() and lease.hold()
    assert cache.fenced_writes(lease) is None  # one process: nobody to fence off
    assert cache.listen(lambda: None) is None  # no other process can announce to it
    cache.set_state("watermark", "w")
    assert cache.get_state("watermark") == "w"


def _redis_internals_used(path: Path) -> set[str]:
    """The Redis cache's type, by name or import, and its internals, as attributes."""
    tree = ast.parse(path.read_text(), str(path))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and node.attr in REDIS_INTERNALS}
    used |= {REDIS_CACHE for node in ast.walk(tree)
             if (isinstance(node, ast.Name) and node.id == REDIS_CACHE)
             or (isinstance(node, ast.ImportFrom) and any(a.name == REDIS_CACHE
                                                         for a in node.names))}
    return used


def test_nothing_outside_the_cache_switches_on_its_type_or_reaches_into_its_client():
    package = ROOT / "feedsvc"
    offenders = {str(path.relative_to(ROOT)): sorted(found)
                 for path in sorted(package.rglob("*.py"))
                 if package / "cache" not in path.parents
                 and (found := _redis_internals_used(path))}
    assert offenders == {}
