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
from feedsvc.cache.redis import RedisCache

FeedCache = MemoryCache | RedisCache | NearCache


def open_cache(redis_url: str | None, prefix: str, ttl: int) -> FeedCache:
    """Redis at `redis_url` (keys under `prefix`, entries living `ttl` seconds past their last
    write), or without a URL an in-process cache (one process only)."""
    if redis_url:
        return RedisCache.from_url(redis_url, prefix=prefix, ttl=ttl)
    return MemoryCache()


__all__ = [
    "CacheFull", "CacheUnavailable", "CachedFeed", "FeedCache", "FeedKey", "Fence", "LeaseLost",
    "MemoryCache", "NearCache", "RedisCache", "RenderedFeed", "open_cache",
]
