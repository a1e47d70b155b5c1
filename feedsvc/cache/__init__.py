"""The feed cache: rendered bytes per (feed, format, address), shared by every web process."""

from __future__ import annotations

from feedsvc.cache.entry import (
    CachedFeed,
    CacheFull,
    CacheUnavailable,
    FeedKey,
    Fence,
    LeaseLost,
    RenderedFeed,
)
from feedsvc.cache.memory import MemoryCache
from feedsvc.cache.near import NearCache
from feedsvc.cache.reach import (
    AggregatorCount,
    DayReach,
    ReachBatch,
    ReachCounts,
    TrafficRow,
)
from feedsvc.cache.redis import RedisCache

SharedCache = MemoryCache | RedisCache  # what a refresh writes to, and leads through
FeedCache = SharedCache | NearCache


def open_cache(redis_url: str | None, prefix: str, ttl: int) -> SharedCache:
    """Redis at `redis_url` (keys under `prefix`, entries living `ttl` seconds past their last
    write), or without a URL an in-process cache (one process only)."""
    if redis_url:
        return RedisCache.from_url(redis_url, prefix=prefix, ttl=ttl)
    return MemoryCache()


def shared(cache: FeedCache) -> SharedCache:
    """The cache beneath a web process's in-process copies (or `cache` itself): the one a
    refresh leads and writes through."""
    return cache.shared if isinstance(cache, NearCache) else cache


def with_local_copies(cache: FeedCache) -> FeedCache:
    """A Redis cache read through in-process copies kept valid by Redis's invalidation
    notices (NearCache); an in-process cache as it is."""
    return NearCache(cache) if isinstance(cache, RedisCache) else cache


__all__ = [
    "AggregatorCount", "CacheFull", "CacheUnavailable", "CachedFeed", "DayReach", "FeedCache",
    "FeedKey", "Fence", "LeaseLost", "MemoryCache", "NearCache", "ReachBatch", "ReachCounts",
    "RedisCache", "RenderedFeed", "SharedCache", "TrafficRow", "open_cache", "shared",
    "with_local_copies",
]
