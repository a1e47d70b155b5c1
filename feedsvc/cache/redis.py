"""Redis cache shared by all web and scheduler processes; every key starts with `prefix`."""

from __future__ import annotations

from collections.abc import Mapping

import redis

from feedsvc.cache.entry import CachedFeed, CacheUnavailable, FeedKey

_FIELDS = (b"body", b"gzip", b"etag", b"last_modified", b"content_type")


class RedisCache:
    """Feed entries as one hash each, expiring `ttl` seconds after their last write: a full
    rebuild rewrites every live feed well within it, so only orphans (a section gone, an
    address removed) expire. Small named state values (the refresh's) live beside them."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: int = 3 * 86400):
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    @classmethod
    def from_url(cls, url: str, prefix: str, ttl: int = 3 * 86400) -> RedisCache:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, prefix, ttl)

    def _key(self, key: FeedKey) -> str:
        return f"{self.prefix}feed:{key}"

    def get(self, key: FeedKey) -> CachedFeed | None:
        try:
            values = self.client.hmget(self._key(key), _FIELDS)
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        if any(v is None for v in values):
            return None
        body, gz, etag, last_modified, content_type = values
        return CachedFeed(body, gz, etag.decode(), int(last_modified), content_type.decode())

    def put_many(self, entries: Mapping[FeedKey, CachedFeed]) -> None:
        """Write all `entries` in one MULTI/EXEC: readers see all of them or none."""
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for key, entry in entries.items():
                    pipe.hset(self._key(key), mapping={
                        "body": entry.body,
                        "gzip": entry.gzip,
                        "etag": entry.etag,
                        "last_modified": entry.last_modified,
                        "content_type": entry.content_type,
                    })
                    pipe.expire(self._key(key), self.ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    def get_state(self, name: str) -> str | None:
        try:
            value = self.client.get(f"{self.prefix}state:{name}")
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return value.decode() if value is not None else None

    def set_state(self, name: str, value: str) -> None:
        try:
            self.client.set(f"{self.prefix}state:{name}", value)
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
