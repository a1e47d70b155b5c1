"""In-process cache for the single-process `feedsvc serve` and `feedsvc demo`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from feedsvc.cache.entry import CachedFeed, FeedKey
from feedsvc.cache.lease import Lease, SoleLeader
from feedsvc.cache.reach import MemoryReach


class MemoryCache:
    def __init__(self) -> None:
        self._entries: dict[FeedKey, CachedFeed] = {}
        self._state: dict[str, str] = {}
        self._render_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._reach = MemoryReach()

    def get(self, key: FeedKey) -> CachedFeed | None:
        return self._entries.get(key)

    def etags(self, keys: Iterable[FeedKey]) -> dict[FeedKey, str | None]:
        return {k: e.etag if (e := self._entries.get(k)) else None for k in keys}

    def put_many(self, entries: Mapping[FeedKey, CachedFeed]) -> None:
        with self._lock:
            self._entries.update(entries)

    def discard(self, keys: Iterable[FeedKey]) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def keep(self, keys: Iterable[FeedKey]) -> None:
        """Entries here never expire."""

    def get_state(self, name: str) -> str | None:
        return self._state.get(name)

    def set_state(self, name: str, value: str) -> None:
        self._state[name] = value

    def render_lock(self, name: str) -> threading.Lock:
        """One render of a document at a time in this process."""
        with self._lock:
            return self._render_locks.setdefault(name, threading.Lock())

    def leader_lease(self, seconds: int) -> SoleLeader:
        """One process, so it always leads."""
        return SoleLeader()

    def fenced_writes(self, lease: Lease) -> None:
        """None: with nobody to fence off, the leader writes to this cache itself."""

    def announce(self, reason: str = "import") -> None:
        """Nothing: no other process listens to this process's memory."""

    def listen(self, on_announcement: Callable[[], None]) -> None:
        """None: no other process can announce a change to this process's memory."""

    def reach(self) -> MemoryReach:
        """The reach counts, in this process's memory (feedsvc.cache.reach)."""
        return self._reach

    def ping(self) -> bool:
        return True
