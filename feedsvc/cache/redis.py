"""Redis cache shared by all web and scheduler processes; every key starts with `prefix` (in a
Redis Cluster, `{prefix}`: see `RedisCache`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping

import redis
from redis.exceptions import LockError, OutOfMemoryError

from feedsvc.cache.connect import RedisClient, connect, is_cluster
from feedsvc.cache.entry import CachedFeed, CacheFull, CacheUnavailable, FeedKey, Fence, LeaseLost

_FIELDS = (b"body", b"gzip", b"br", b"etag", b"last_modified", b"content_type")
_DEPOSED = "DEPOSED"
# Every write of entries and state, in one script so that it is atomic (readers see all of it
# or none) and, when fenced, applied only if the leader lease still holds the writer's token:
# Redis checks it in the same step, so no lease lost in between (expired, evicted, taken) can
# let a deposed leader publish. A script that Redis refuses for lack of memory is refused at
# its first write, before anything is written.
# KEYS: [lease], entry keys…, state keys…  ARGV: token or "", ttl, entry count, the six
# fields of each entry, each state's value.
_WRITE = f"""
local k = 1
if ARGV[1] ~= '' then
  if string.match(redis.call('GET', KEYS[1]) or '', '^%x+') ~= ARGV[1] then
    return redis.error_reply("{_DEPOSED} the leader lease is no longer this scheduler's")
  end
  k = 2
end
local a = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[k], 'body', ARGV[a], 'gzip', ARGV[a + 1], 'br', ARGV[a + 2],
             'etag', ARGV[a + 3], 'last_modified', ARGV[a + 4], 'content_type', ARGV[a + 5])
  redis.call('EXPIRE', KEYS[k], ARGV[2])
  k, a = k + 1, a + 6
end
while k <= #KEYS do
  redis.call('SET', KEYS[k], ARGV[a])
  k, a = k + 1, a + 1
end
"""


class RedisCache:
    """Feed entries as one hash each (`{keyspace}feed:{origin}|{path}|{filename}`), expiring
    `ttl` seconds after their last write: a full rebuild rewrites every live feed well within
    it, so only orphans (a section gone, an address removed) expire. Small named state values
    (the refresh's) live beside them under `{keyspace}state:`.

    `keyspace` is `prefix`, except in a Redis Cluster, where it is `{prefix}`: a hash tag, so
    that every key of the cache is in one slot. A refresh publishes many feeds' documents in
    one script, checking the leader lease in the same step (readers see all of them or none),
    and Cluster runs a script only within one slot. The cost: the cache lives on one primary
    (and its replicas) instead of being spread over the cluster; its size (feeds x formats x
    addresses, ~160 KB each with the compressed forms) fits one node, and the near cache keeps
    the read load off it."""

    def __init__(self, client: RedisClient, prefix: str, ttl: int = 3 * 86400):
        self.client = client
        self.prefix = prefix
        self.keyspace = f"{{{prefix}}}" if is_cluster(client) else prefix
        self.ttl = ttl
        self._write_script = client.register_script(_WRITE)

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
            values = self.client.hmget(self.redis_key(key), _FIELDS)
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        if any(v is None for v in values):  # absent, or written before a field existed
            return None
        body, gz, br, etag, last_modified, content_type = values
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
            value = self.client.get(f"{self.keyspace}state:{name}")
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return value.decode() if value is not None else None

    def set_state(self, name: str, value: str, fence: Fence | None = None) -> None:
        self._write({}, {name: value}, fence)

    def _write(self, entries: Mapping[FeedKey, CachedFeed], states: Mapping[str, str],
               fence: Fence | None) -> None:
        if not entries and not states:
            return
        keys = [fence.key] if fence else []
        args: list[str | bytes | int] = [fence.token if fence else "", self.ttl, len(entries)]
        for key, entry in entries.items():
            keys.append(self.redis_key(key))
            args += [entry.body, entry.gzip, entry.br, entry.etag, entry.last_modified,
                     entry.content_type]
        for name, value in states.items():
            keys.append(f"{self.keyspace}state:{name}")
            args.append(value)
        try:
            self._write_script(keys=keys, args=args)
        except OutOfMemoryError as exc:
            raise CacheFull(str(exc)) from exc
        except redis.ResponseError as exc:
            if str(exc).startswith(_DEPOSED):
                raise LeaseLost(str(exc).removeprefix(_DEPOSED).strip()) from None
            raise CacheUnavailable(str(exc)) from exc
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

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
