"""One leader among many schedulers: only the process holding the lease refreshes. The lease
lives in the cache (`RedisCache.leader_lease`), beside the entries its holder's writes are
fenced by; the in-process cache, one process alone, offers `SoleLeader`.

The lease is one Redis key holding the leader's token and the time its lease ends, by Redis's
clock. Every scheduler calls `hold()` every third of the lease: the leader renews, the others
take it once it has ended; a leader that dies (even by SIGKILL) stops renewing, and another
process takes over within one lease and a third. A token names its holder (`host:pid:random`,
then the term), so a standby can say who leads; each process logs when it takes, loses or gives
up the lead and when it stands by (and for whom): one line per change, not per renewal.

Redis short of memory must not break this. The key has no lifetime, so `volatile-lru` (what
docs/deploy.md recommends) never evicts it, and the scripts that take, renew and release it
may write when Redis refuses other writes for lack of memory (`allow-oom`, Redis ≥ 7): a
refresh can still lead and publish what fits. Under `allkeys-lru`, or when a leader stalls past
its lease, the lease can still be lost while its holder is busy, and another scheduler leads
while the first still believes it does. So the leader's writes are fenced (`LeaderWrites`):
Redis applies each only while the lease key holds the token this scheduler's refresh began
with, in the same atomic step, and a deposed leader's publish is refused (LeaseLost) instead
of landing over its successor's.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import redis

from feedsvc.cache.entry import CachedFeed, FeedKey, Fence, LeaseLost
from feedsvc.redis_client import RedisClient

if TYPE_CHECKING:
    from feedsvc.cache.redis import RedisCache

log = logging.getLogger(__name__)

# KEYS[1]: the lease; ARGV: token, lease in ms. Takes the lease if it is free or has ended,
# renews it if it is this token's; 1 if the token holds it now. A value of another form (a
# lease of an older version, with a lifetime of its own) counts as held.
_HOLD = """#!lua flags=allow-oom
local held = redis.call('GET', KEYS[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if held then
  local owner, ends = string.match(held, '^(%S+) (%d+)$')
  if not owner or (owner ~= ARGV[1] and tonumber(ends) > now) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. (now + tonumber(ARGV[2])))
return 1
"""
_RELEASE = """#!lua flags=allow-oom
if string.match(redis.call('GET', KEYS[1]) or '', '^%S+') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
"""


class Lease(Protocol):
    """What a scheduler asks of its lease: to lead, to step down, the fence for its writes."""

    def hold(self) -> bool: ...

    def release(self) -> None: ...

    @property
    def fence(self) -> Fence | None: ...


class LeaderLock:
    def __init__(self, client: RedisClient, name: str, lease: int):
        self.name = name
        self._lease_ms = lease * 1000
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._client = client
        self._token: str | None = None  # this term's, while leading
        self._said: str | None = None  # the last state logged: "lead", or whom it stands by for

    def hold(self) -> bool:
        """Whether this process leads now: renew the lease if it is ours, else try to take it
        (under a new token: each term has its own)."""
        token = self._token or f"{self.identity}/{uuid.uuid4().hex[:8]}"
        holder = "an unknown process"  # when Redis does not say
        try:
            leading = bool(self._hold(keys=[self.name], args=[token, self._lease_ms]))
            if not leading:
                holder = _holder_of(self._client.get(self.name))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            log.warning("leader lease %s: %s", self.name, exc)
            leading = False
        self._token = token if leading else None
        self._say("lead" if leading else holder)
        return leading

    def _say(self, state: str) -> None:
        """One line when the lead changes hands as this process sees it, not one per renewal."""
        if state == self._said:
            return
        if state == "lead":
            log.info("scheduler %s takes the lead", self.identity)
        elif self._said == "lead":
            log.warning("scheduler %s lost the lead: %s leads", self.identity, state)
        else:
            log.info("scheduler %s stands by: %s leads", self.identity, state)
        self._said = state

    @property
    def fence(self) -> Fence | None:
        """The lease as this scheduler holds it (None when it does not lead)."""
        return Fence(self.name, self._token.encode()) if self._token else None

    def release(self) -> None:
        if self._token is None:
            return
        try:
            self._release(keys=[self.name], args=[self._token])
            log.info("scheduler %s gives up the lead", self.identity)
        except redis.RedisError as exc:
            log.warning("leader lease %s not released: %s", self.name, exc)
        self._token, self._said = None, None


def _holder_of(lease: bytes | None) -> str:
    """Who holds a lease, from its value (`<identity>/<term> <end>`; any other value as is)."""
    if lease is None:
        return "nobody"
    return lease.decode(errors="replace").split(" ", 1)[0].split("/", 1)[0]


class LeaderWrites:
    """The cache as the leader refreshes it: reads pass through, and every write is fenced by
    the lease this scheduler held when the refresh began (`fence_now`): refused (LeaseLost)
    once that lease is gone, even if this scheduler leads again by then under a new token,
    with newer documents published in between."""

    def __init__(self, cache: RedisCache, lease: Lease):
        self.cache = cache
        self.lease = lease
        self._fence: Fence | None = None

    def fence_now(self) -> None:
        """Fence the writes that follow by the lease as held now (a refresh's start)."""
        self._fence = self.lease.fence

    def _fenced(self) -> Fence:
        if self._fence is None:
            raise LeaseLost("this scheduler did not lead when the refresh began")
        return self._fence

    def put_many(self, entries: Mapping[FeedKey, CachedFeed]) -> None:
        self.cache.put_many(entries, fence=self._fenced())

    def set_state(self, name: str, value: str) -> None:
        self.cache.set_state(name, value, fence=self._fenced())

    def etags(self, keys: Iterable[FeedKey]) -> dict[FeedKey, str | None]:
        return self.cache.etags(keys)

    def keep(self, keys: Iterable[FeedKey]) -> None:
        self.cache.keep(keys)

    def discard(self, keys: Iterable[FeedKey]) -> None:
        self.cache.discard(keys)

    def get_state(self, name: str) -> str | None:
        return self.cache.get_state(name)

    def polled_since(self, paths: Iterable[str], since: float) -> set[str]:
        return self.cache.polled_since(paths, since)

    def polled(self, since: float) -> set[str]:
        return self.cache.polled(since)

    def forget_polls_before(self, since: float) -> None:
        """Unfenced, like `discard`: a deposed leader dropping old marks drops nothing new."""
        self.cache.forget_polls_before(since)


class SoleLeader:
    """With the in-process cache there is one process, and it always leads."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass

    @property
    def fence(self) -> Fence | None:
        """None: its writes are never fenced (the in-process cache takes none)."""
        return None
