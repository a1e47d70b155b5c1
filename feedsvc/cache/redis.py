"""Redis cache shared by all web and scheduler processes; every key starts with `prefix` (in a
Redis Cluster, `{prefix}`: see `RedisCache`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import cast

import redis
from redis.exceptions import LockError, OutOfMemoryError, WatchError

from feedsvc.cache.announce import TriggerListener, announce
from feedsvc.cache.entry import CachedFeed, CacheFull, CacheUnavailable, FeedKey, Fence, LeaseLost
from feedsvc.cache.lease import LeaderLock, LeaderWrites, Lease
from feedsvc.cache.reach import RedisReach
from feedsvc.redis_client import RedisClient, connect, is_cluster

_FIELDS = (b"body", b"gzip", b"br", b"etag", b"last_modified", b"content_type")


def _holder(lease: bytes | None) -> bytes:
    """The token in a leader lease's value (`<token> <end of lease>`, feedsvc.cache.lease)."""
    return (lease or b"").split(b" ", 1)[0]


class RedisCache:
    """Feed entries as one hash each (`{keyspace}feed:{origin}|{path}|{filename}`), expiring
    `ttl` seconds after their last write: a full rebuild rewrites every live feed well within
    it, so only orphans (a section gone, an address removed) expire. Small named state values
    (the refresh's) live beside them under `{keyspace}state:`.

    `keyspace` is `prefix`, except in a Redis Cluster, where it is `{prefix}`: a hash tag, so
    that every key of the cache is in one slot. A refresh publishes many feeds' documents in
    one MULTI/EXEC, under WATCH of the leader lease (readers see all of them or none), and
    Cluster runs a transaction only within one slot. The cost: the cache lives on one primary
    (and its replicas) instead of being spread over the cluster; its size (feeds x formats x
    addresses, ~160 KB each with the compressed forms) fits one node, and the near cache keeps
    the read load off it."""

    def __init__(self, client: RedisClient, prefix: str, ttl: int = 3 * 86400):
        self.client = client
        self.prefix = prefix
        self.keyspace = f"{{{prefix}}}" if is_cluster(client) else prefix
        self.ttl = ttl
        self._reach = RedisReach(client, self.keyspace)

    @classmethod
    def from_url(cls, url: str, prefix: str, ttl: int = 3 * 86400) -> RedisCache:
        return cls(connect(url), prefix, ttl)

    @property
    def feed_prefix(self) -> str:
        """What every entry's key starts with (and nothing else's)."""
        return f"{self.keyspace}feed:"

    def redis_key(self, key: FeedKey) -> str:
        return f"{self.feed_prefix}{key}"

    def get(self, key: FeedKey) -> CachedFeed | None:
        """The whole entry in one HMGET: a hash is read atomically, so never half of a write."""
        try:
            values = cast("list[bytes | None]", self.client.hmget(self.redis_key(key), _FIELDS))
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        found = [v for v in values if v is not None]
        if len(found) != len(_FIELDS):  # absent, or written before a field existed
            return None
        body, gz, br, etag, last_modified, content_type = found
        return CachedFeed(body, gz, br, etag.decode(), int(last_modified), content_type.decode())

    def etags(self, keys: Iterable[FeedKey]) -> dict[FeedKey, str | None]:
        """The current ETag of each key (None where absent) in one round trip, without the
        bodies: what a refresh compares to tell which feeds changed."""
        keys = list(keys)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(self.redis_key(key), "etag")
                values = pipe.execute()
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return {k: v.decode() if v is not None else None for k, v in zip(keys, values,
                                                                          strict=True)}

    def put_many(self, entries: Mapping[FeedKey, CachedFeed], fence: Fence | None = None) -> None:
        """Write all `entries` at once: readers see all of them or none. With `fence`, only
        while the lease holds its token (else LeaseLost, nothing written)."""
        self._write(entries, {}, fence)

    def discard(self, keys: Iterable[FeedKey]) -> None:
        """Remove entries whose bytes are out of date but whose new ones did not fit: a reader
        then gets the feed rendered from the store, never the old bytes. Redis allows
        deletions when it refuses writes for lack of memory."""
        try:
            self.client.delete(*(self.redis_key(key) for key in keys))
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    def keep(self, keys: Iterable[FeedKey]) -> None:
        """Restart the lifetime of entries a refresh found unchanged (not rewritten)."""
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.expire(self.redis_key(key), self.ttl)
                pipe.execute()
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    def get_state(self, name: str) -> str | None:
        try:
            value = cast("bytes | None", self.client.get(f"{self.keyspace}state:{name}"))
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return value.decode() if value is not None else None

    def set_state(self, name: str, value: str, fence: Fence | None = None) -> None:
        self._write({}, {name: value}, fence)

    def _write(self, entries: Mapping[FeedKey, CachedFeed], states: Mapping[str, str],
               fence: Fence | None) -> None:
        """Every write of entries and state: one MULTI/EXEC, so readers see all of it or none.
        With `fence`, under WATCH of the lease: applied only if the lease still holds the
        writer's token when Redis runs it, so no lease lost in between (expired, evicted,
        taken) lets a deposed leader publish; a lease written meanwhile (renewed) is checked
        again. Redis short of memory refuses the transaction while it is queued: nothing of
        it is written."""
        if not entries and not states:
            return
        try:
            with self.client.pipeline(transaction=True) as pipe:
                while True:
                    if fence:
                        pipe.watch(fence.key)
                        if _holder(cast("bytes | None", pipe.get(fence.key))) != fence.token:
                            raise LeaseLost("the leader lease is no longer this scheduler's")
                        pipe.multi()
                    for key, entry in entries.items():
                        pipe.hset(self.redis_key(key), mapping={
                            "body": entry.body,
                            "gzip": entry.gzip,
                            "br": entry.br,
                            "etag": entry.etag,
                            "last_modified": entry.last_modified,
                            "content_type": entry.content_type,
                        })
                        pipe.expire(self.redis_key(key), self.ttl)
                    for name, value in states.items():
                        pipe.set(f"{self.keyspace}state:{name}", value)
                    try:
                        pipe.execute()
                        return
                    except WatchError:
                        continue
        except OutOfMemoryError as exc:
            raise CacheFull(str(exc)) from exc
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc

    @contextlib.contextmanager
    def render_lock(self, name: str, wait: float = 15.0) -> Iterator[None]:
        """Held by one process at a time across all web processes: concurrent misses of one
        document wait for the first one's render instead of all rendering. If Redis fails or
        the wait runs out, the caller renders anyway (a duplicate render beats no answer)."""
        lock = self.client.lock(f"{self.keyspace}render:{name}", timeout=60,
                                blocking_timeout=wait, thread_local=False)
        try:
            held = lock.acquire()
        except redis.RedisError:
            held = False
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(redis.RedisError, LockError):
                    lock.release()

    def leader_lease(self, seconds: int) -> LeaderLock:
        """The lease schedulers sharing this cache take turns on. In the cache's keyspace (one
        Cluster slot), where the fenced writes check it."""
        return LeaderLock(self.client, f"{self.keyspace}leader", seconds)

    def fenced_writes(self, lease: Lease) -> LeaderWrites:
        """This cache as `lease`'s holder writes to it: refused once the lease is lost."""
        return LeaderWrites(self, lease)

    def announce(self, reason: str = "import") -> None:
        """Tell every scheduler listening on this cache that the store changed."""
        announce(self.client, self.prefix, reason)

    def listen(self, on_announcement: Callable[[], None]) -> TriggerListener:
        """A listener (not started) calling `on_announcement` for each announcement."""
        return TriggerListener(self.client, self.prefix, on_announcement)

    def reach(self) -> RedisReach:
        """The reach counts, under `{keyspace}reach:` (feedsvc.cache.reach)."""
        return self._reach

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
