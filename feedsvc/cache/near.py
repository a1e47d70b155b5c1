"""In-process copies of Redis entries, dropped the moment Redis says their key changed.

A web process serves a cached feed without a Redis round trip: its copy stays valid exactly as
long as the invalidation stream (feedsvc.cache.invalidation) has no gap. So every process
serves the bytes Redis holds, give or take the time a notice takes to arrive (milliseconds;
at most two heartbeats, 4 s, if the connection dies silently), and a copy never outlives a
change it was told about. Without the stream the copies are not trusted: each request reads
Redis, as it would with no copies, and a copy is served only as the last known one while Redis
is unreachable.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from feedsvc.cache.entry import CachedFeed, CacheUnavailable, FeedKey
from feedsvc.cache.invalidation import InvalidationListener
from feedsvc.cache.reach import RedisReach
from feedsvc.cache.redis import RedisCache
from feedsvc.supervised import Supervised

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # per process; the hot feeds, least recently used out


class NearCache:
    """A RedisCache with in-process copies; the same methods, so callers need not care."""

    def __init__(self, shared: RedisCache, max_bytes: int = DEFAULT_MAX_BYTES):
        self.shared = shared
        self.max_bytes = max_bytes
        # key -> (entry, epoch it was read in; None: not covered by notices, fallback only)
        self._copies: OrderedDict[FeedKey, tuple[CachedFeed, int | None]] = OrderedDict()
        self._keys: dict[bytes, FeedKey] = {}  # Redis key -> FeedKey, to apply notices
        self._bytes = 0
        self._lock = threading.Lock()
        self._epoch: int | None = None  # a new number each (re)connection; None while cut off
        self._epochs = 0
        self._changes = 0  # notices so far: a read that overlaps one is not trusted
        self._pid: int | None = None
        self._listener = InvalidationListener(
            shared.client, shared.feed_prefix, on_invalidate=self._invalidate,
            on_connected=self._connected, on_disconnected=self._disconnected)

    @property
    def thread(self) -> Supervised:
        """The thread that applies Redis's invalidation notices."""
        return self._listener.thread

    def get(self, key: FeedKey) -> CachedFeed | None:
        if self._pid != os.getpid():  # started lazily: a thread does not survive a fork
            self._start()
        found = self._copies.get(key)
        if found is not None and found[1] is not None and found[1] == self._epoch:
            # least recently used goes first; a notice may have dropped it meanwhile
            with contextlib.suppress(KeyError):
                self._copies.move_to_end(key)
            return found[0]
        epoch, changes = self._epoch, self._changes
        try:
            entry = self.shared.get(key)
        except CacheUnavailable:
            if found is not None:
                return found[0]  # Redis is down: the last known bytes beat none
            raise
        if entry is not None:
            self._keep(key, entry, epoch, changes)
        return entry

    def put_many(self, entries: Mapping[FeedKey, CachedFeed]) -> None:
        """Write to Redis (whose notices then drop the copies these replace). Redis down: the
        entries are kept as last known copies, so what was rendered is not rendered again on
        every request until Redis is back, and CacheUnavailable is raised all the same."""
        try:
            self.shared.put_many(entries)
        except CacheUnavailable:
            for key, entry in entries.items():
                self._keep(key, entry, None, 0)
            raise

    def render_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.shared.render_lock(name)

    def etags(self, keys: Iterable[FeedKey]) -> dict[FeedKey, str | None]:
        return self.shared.etags(keys)

    def keep(self, keys: Iterable[FeedKey]) -> None:
        self.shared.keep(keys)

    def discard(self, keys: Iterable[FeedKey]) -> None:
        self.shared.discard(keys)  # Redis's invalidation notices then drop the copies

    def mark_polled(self, path: str, when: float) -> None:
        self.shared.mark_polled(path, when)

    def polled_since(self, paths: Iterable[str], since: float) -> set[str]:
        return self.shared.polled_since(paths, since)

    def polled(self, since: float) -> set[str]:
        return self.shared.polled(since)

    def forget_polls_before(self, since: float) -> None:
        self.shared.forget_polls_before(since)

    def get_state(self, name: str) -> str | None:
        return self.shared.get_state(name)

    def set_state(self, name: str, value: str) -> None:
        self.shared.set_state(name, value)

    def reach(self) -> RedisReach:
        return self.shared.reach()

    def ping(self) -> bool:
        return self.shared.ping()

    def close(self) -> None:
        self._listener.stop()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._copies.clear()
            self._keys.clear()
            self._bytes = 0
            self._epoch = None
        self._listener.start()

    def _keep(self, key: FeedKey, entry: CachedFeed, epoch: int | None, changes: int) -> None:
        """Keep `entry`, trusted only if no notice arrived while it was being read (it may be
        the notice of a write that came after the read) and the stream had no gap."""
        with self._lock:
            trusted = epoch if changes == self._changes and epoch == self._epoch else None
            self._drop(key)
            self._copies[key] = (entry, trusted)
            self._keys[self.shared.redis_key(key).encode()] = key
            self._bytes += entry.size
            while self._bytes > self.max_bytes and len(self._copies) > 1:
                # popitem: one atomic step, unlike iterating while get() reorders
                oldest, (copy, _) = self._copies.popitem(last=False)
                self._forget(oldest, copy)

    def _drop(self, key: FeedKey) -> None:
        found = self._copies.pop(key, None)
        if found is not None:
            self._forget(key, found[0])

    def _forget(self, key: FeedKey, copy: CachedFeed) -> None:
        self._bytes -= copy.size
        self._keys.pop(self.shared.redis_key(key).encode(), None)

    def _invalidate(self, keys: Iterable[bytes] | None) -> None:
        with self._lock:
            self._changes += 1
            if keys is None:  # FLUSHDB / FLUSHALL
                self._copies.clear()
                self._keys.clear()
                self._bytes = 0
                return
            for name in keys:
                key = self._keys.get(name)
                if key is not None:
                    self._drop(key)

    def _connected(self) -> None:
        with self._lock:
            self._changes += 1
            self._epochs += 1
            self._epoch = self._epochs

    def _disconnected(self) -> None:
        with self._lock:
            self._changes += 1
            self._epoch = None
