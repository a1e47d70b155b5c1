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
from feedsvc.config import Settings

FeedCache = MemoryCache | RedisCache | NearCache


def open_cache(settings: Settings) -> FeedCache:
    """Redis when `REDIS_URL` is set, else an in-process cache (one process only)."""
    if settings.redis_url:
        return RedisCache.from_url(settings.redis_url, prefix=settings.cache_prefix,
                                   ttl=3 * settings.full_rebuild_interval)
    return MemoryCache()


__all__ = [
    "CacheFull", "CacheUnavailable", "CachedFeed", "FeedCache", "FeedKey", "Fence", "LeaseLost",
    "MemoryCache", "NearCache", "RedisCache", "RenderedFeed", "open_cache",
]
