"""Reach: how many requests each feed answered, through which address, to which client family,
and how many distinct readers polled it, per UTC day (docs/contracts.md "Reach"). The web
workers count in memory and write a batch about once a second (`ReachCounts.record`); the
scheduler reads a day back (`ReachCounts.day`) for the store's daily rollups.

In Redis, under the cache's keyspace (one Cluster slot, like the rest of the cache):
- `reach:{day}:traffic`: a hash, `feed TAB address TAB family TAB measure` -> HINCRBY'd total
  (measures: requests, not_modified, bytes_sent, bytes_saved);
- `reach:{day}:aggregators`: a hash, `aggregator TAB feed id TAB feed TAB address` -> the
  subscriber count the aggregator reported last (latest wins);
- `reach:{day}:pollers:{feed TAB address TAB family}`: a HyperLogLog of the day's distinct
  direct clients, and `reach:{day}:pollers` the set of those suffixes, so a day is read without
  SCAN.
Each expires KEEP_SECONDS after its day began: Redis holds today and yesterday only.

A client is counted as a keyed hash (BLAKE2b, 8 bytes) of its address and User-Agent. The key
is random per UTC day, made by whichever worker writes first (SET NX) and shared by all through
Redis under `reach-key:{day}`, apart from the counts, never in the store; it expires an hour
after its day ends, after which nobody can tell whose hash a value was, not even with a list of
candidate addresses. No raw address or User-Agent is written anywhere: they exist only in the
worker's memory, for the second until its batch is recorded.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, cast

import redis

from feedsvc.cache.entry import CacheUnavailable
from feedsvc.redis_client import RedisClient

DAY_SECONDS = 86400
KEEP_SECONDS = DAY_SECONDS * 5 // 2  # counts expire 2.5 days after their day began
KEY_GRACE_SECONDS = 3600             # the day's hashing key outlives its day by this much
MEASURES = ("requests", "not_modified", "bytes_sent", "bytes_saved")

# KEYS: HyperLogLogs grouped by feed; ARGV: the size of each group. Each key's count, then each
# group's union: one call, where a Cluster pipeline refuses PFCOUNT (every key is in one slot).
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('PFCOUNT', key)
end
local first = 1
for _, size in ipairs(ARGV) do
  local group = {}
  for i = first, first + tonumber(size) - 1 do
    group[#group + 1] = KEYS[i]
  end
  counts[#counts + 1] = redis.call('PFCOUNT', unpack(group))
  first = first + tonumber(size)
end
return counts
"""

TrafficKey = tuple[str, str, str]  # feed, address, family
AggregatorKey = tuple[str, str, str, str]  # aggregator, its feed id, feed, address


@dataclass(frozen=True, slots=True)
class TrafficRow:
    feed: str
    address: str
    family: str
    requests: int       # every answered GET/HEAD of the feed (200 and 304)
    not_modified: int   # 304s
    bytes_sent: int     # body bytes sent
    bytes_saved: int    # body bytes a 304 did not send (size of the representation it stood for)


@dataclass(frozen=True, slots=True)
class AggregatorCount:
    aggregator: str     # family id, e.g. "feedly"
    feed_id: str        # the aggregator's own id for the feed when its UA gives one, else ""
    feed: str
    address: str
    subscribers: int    # latest count reported that day


@dataclass(frozen=True, slots=True)
class DayReach:
    day: datetime.date
    traffic: tuple[TrafficRow, ...]
    # distinct direct pollers (HyperLogLog estimates; aggregators are NOT in here):
    pollers: Mapping[tuple[str, str, str], int]   # (feed, address, family) -> distinct clients
    # feed -> distinct clients over all its addresses and families (HLL union)
    pollers_by_feed: Mapping[str, int]
    aggregators: tuple[AggregatorCount, ...]


@dataclass(slots=True)
class ReachBatch:
    """What one web worker counted in about a second of one UTC day."""

    day: datetime.date
    # (feed, address, family) -> [requests, not_modified, bytes_sent, bytes_saved]
    traffic: dict[TrafficKey, list[int]] = field(default_factory=dict)
    # (feed, address, family) -> {(client address, User-Agent)}: hashed when recorded, and only
    # for the families counted as distinct clients
    clients: dict[TrafficKey, set[tuple[str, str]]] = field(default_factory=dict)
    # (aggregator, feed id, feed, address) -> the subscriber count it reported last
    aggregators: dict[AggregatorKey, int] = field(default_factory=dict)


class ReachCounts(Protocol):
    """The reach counts of one cache backend (`FeedCache.reach()`)."""

    def record(self, batch: ReachBatch) -> bytes | None:
        """Add a worker's batch; CacheUnavailable when the backend cannot be reached. Returns
        the generation of the day's counts (None once its key is gone): it changes when they
        started over (Redis restarted empty), so that a worker that skips the clients it has
        recorded already knows to send them again."""

    def day(self, day: datetime.date) -> DayReach:
        """What is held for `day` (empty if nothing); CacheUnavailable as for `record`."""


def client_hashes(key: bytes, clients: Iterable[tuple[str, str]]) -> list[bytes]:
    """Clients as counted: a keyed hash of each (address, User-Agent)."""
    keyed = hashlib.blake2b(key=key, digest_size=8)  # copied: cheaper than keying each anew
    hashes = []
    for address, user_agent in clients:
        one = keyed.copy()
        one.update(f"{address}\n{user_agent}".encode("utf-8", "surrogatepass"))
        hashes.append(one.digest())
    return hashes


def _generation(key: bytes | None) -> bytes | None:
    """What tells the day's counts apart from a later start over: a digest of the day's key,
    which a new start makes anew (the key itself stays where it is)."""
    return None if key is None else hashlib.blake2b(key, digest_size=8).digest()


def day_start(day: datetime.date) -> int:
    """Epoch seconds at which the UTC `day` begins."""
    return (day - datetime.date(1970, 1, 1)).days * DAY_SECONDS


def _day_reach(day: datetime.date, traffic: Mapping[TrafficKey, list[int]],
               pollers: Mapping[TrafficKey, int], by_feed: Mapping[str, int],
               aggregators: Mapping[AggregatorKey, int]) -> DayReach:
    return DayReach(
        day,
        tuple(TrafficRow(*key, *counts) for key, counts in sorted(traffic.items())),
        dict(sorted(pollers.items())),
        dict(sorted(by_feed.items())),
        tuple(AggregatorCount(*key, n) for key, n in sorted(aggregators.items())))


def _joined(parts: Iterable[str]) -> str:
    return "\t".join(parts)


class RedisReach:
    """The counts in Redis (see the module's docstring for the layout)."""

    def __init__(self, client: RedisClient, keyspace: str):
        self.client = client
        self.prefix = f"{keyspace}reach:"
        self.key_prefix = f"{keyspace}reach-key:"
        self._count = client.register_script(_COUNT)

    def _names(self, day: datetime.date) -> tuple[str, str, str]:
        """The day's traffic hash, aggregators hash, and pollers index (and HLL prefix)."""
        base = f"{self.prefix}{day.isoformat()}:"
        return f"{base}traffic", f"{base}aggregators", f"{base}pollers"

    def _day_key(self, day: datetime.date) -> bytes | None:
        """The day's hashing key: made by the first writer of the day, read by the others; None
        once it has expired (a batch flushed more than the grace after its day)."""
        name = f"{self.key_prefix}{day.isoformat()}"
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(name, secrets.token_bytes(32), nx=True,
                     exat=day_start(day) + DAY_SECONDS + KEY_GRACE_SECONDS)
            pipe.get(name)
            _, key = pipe.execute()
        return cast("bytes | None", key)

    def record(self, batch: ReachBatch) -> bytes | None:
        """Two pipelines: the day's key (to hash the clients with; its digest is the
        generation), then the writes."""
        traffic, aggregators, pollers = self._names(batch.day)
        expires = day_start(batch.day) + KEEP_SECONDS
        try:
            key = self._day_key(batch.day)
            # Without the day's key its clients cannot be hashed as the day's others were (a new
            # key would count them twice): a late batch adds its traffic only.
            clients = batch.clients if key is not None else {}
            with self.client.pipeline(transaction=False) as pipe:
                written = []
                for parts, counts in batch.traffic.items():
                    for measure, n in zip(MEASURES, counts, strict=True):
                        if n:
                            pipe.hincrby(traffic, _joined((*parts, measure)), n)
                if batch.traffic:
                    written.append(traffic)
                if batch.aggregators:
                    pipe.hset(aggregators, mapping={
                        _joined(parts): n for parts, n in batch.aggregators.items()})
                    written.append(aggregators)
                for parts, seen in clients.items():
                    member = _joined(parts)
                    pipe.pfadd(f"{pollers}:{member}", *client_hashes(cast("bytes", key), seen))
                    pipe.sadd(pollers, member)
                    written += [f"{pollers}:{member}", pollers]
                for name in set(written):
                    pipe.expireat(name, expires)
                pipe.execute()
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        return _generation(key)

    def day(self, day: datetime.date) -> DayReach:
        traffic_name, aggregators_name, pollers = self._names(day)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hgetall(traffic_name)
                pipe.hgetall(aggregators_name)
                pipe.smembers(pollers)
                raw_traffic, raw_aggregators, raw_members = pipe.execute()
            members = sorted(m.decode() for m in raw_members)  # grouped by feed, its first part
            by_feed: dict[str, int] = {}
            for member in members:
                feed = member.split("\t")[0]
                by_feed[feed] = by_feed.get(feed, 0) + 1
            counts = cast("list[int]", self._count(
                keys=[f"{pollers}:{m}" for m in members], args=list(by_feed.values()))
                if members else [])
        except redis.RedisError as exc:
            raise CacheUnavailable(str(exc)) from exc
        traffic: dict[TrafficKey, list[int]] = {}
        for name, value in raw_traffic.items():
            feed, address, family, measure = name.decode().split("\t")
            traffic.setdefault((feed, address, family), [0] * len(MEASURES))[
                MEASURES.index(measure)] = int(value)
        aggregators = {cast("AggregatorKey", tuple(name.decode().split("\t"))): int(value)
                       for name, value in raw_aggregators.items()}
        pollers_count = {cast("TrafficKey", tuple(m.split("\t"))): n
                         for m, n in zip(members, counts, strict=False)}
        return _day_reach(day, traffic, pollers_count,
                          dict(zip(by_feed, counts[len(members):], strict=True)), aggregators)


@dataclass(slots=True)
class _Day:
    traffic: dict[TrafficKey, list[int]] = field(default_factory=dict)
    clients: dict[TrafficKey, set[bytes]] = field(default_factory=dict)
    aggregators: dict[AggregatorKey, int] = field(default_factory=dict)


class MemoryReach:
    """The in-process cache's counts: one process, so exact sets of hashes where Redis keeps
    HyperLogLogs. Today and yesterday only, as in Redis; the day's key beside, never inside,
    the counts."""

    def __init__(self) -> None:
        self._days: dict[datetime.date, _Day] = {}
        self._keys: dict[datetime.date, bytes] = {}
        self._lock = threading.Lock()

    def record(self, batch: ReachBatch) -> bytes | None:
        with self._lock:
            oldest = batch.day - datetime.timedelta(days=1)
            for kept in (self._days, self._keys):
                for old in [d for d in kept if d < oldest]:
                    del kept[old]
            day = self._days.setdefault(batch.day, _Day())
            key = self._keys.setdefault(batch.day, secrets.token_bytes(32))
            for parts, counts in batch.traffic.items():
                total = day.traffic.setdefault(parts, [0] * len(MEASURES))
                for i, n in enumerate(counts):
                    total[i] += n
            for parts, clients in batch.clients.items():
                day.clients.setdefault(parts, set()).update(client_hashes(key, clients))
            day.aggregators.update(batch.aggregators)
            return _generation(key)

    def day(self, day: datetime.date) -> DayReach:
        with self._lock:
            held = self._days.get(day, _Day())
            by_feed: dict[str, set[bytes]] = {}
            for (feed, _, _), hashes in held.clients.items():
                by_feed.setdefault(feed, set()).update(hashes)
            return _day_reach(day, {k: list(v) for k, v in held.traffic.items()},
                              {k: len(v) for k, v in held.clients.items()},
                              {k: len(v) for k, v in by_feed.items()}, dict(held.aggregators))
