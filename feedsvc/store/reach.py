"""The daily reach rollups in SQL (docs/contracts.md, "Reach"): so that who reads the feeds
survives Redis, which holds only today and yesterday, for `RETENTION_DAYS`.

A day is written whole (`merge_day`: its rows read, merged, deleted and inserted in one
transaction), so rolling the same day up again, every minute while it lasts, is idempotent; a
day's figures never go down, so a Redis restart or flush loses nothing already rolled up. What
comes in is the cache's day of counts (feedsvc.cache.reach.DayReach), read here through the
attributes it has: the store does not import the cache. No row holds a client's address or
User-Agent: only feed paths, the site's addresses, client family ids and numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from sqlalchemy import delete, func, insert, select

from feedsvc.store.repository import Store, _connected
from feedsvc.store.schema import reach_aggregators, reach_feed_pollers, reach_traffic

RETENTION_DAYS = 400
Figures = dict[tuple[str, ...], tuple[int, ...]]  # a table's day: key columns -> figures


class Traffic(Protocol):
    """One (feed, address, family)'s traffic of a day (feedsvc.cache.reach.TrafficRow)."""

    @property
    def feed(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def requests(self) -> int: ...
    @property
    def not_modified(self) -> int: ...
    @property
    def bytes_sent(self) -> int: ...
    @property
    def bytes_saved(self) -> int: ...


class Reported(Protocol):
    """An aggregator's reported subscriber count (feedsvc.cache.reach.AggregatorCount)."""

    @property
    def aggregator(self) -> str: ...
    @property
    def feed_id(self) -> str: ...
    @property
    def feed(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def subscribers(self) -> int: ...


class Day(Protocol):
    """A day of counts as the cache holds it (feedsvc.cache.reach.DayReach)."""

    @property
    def day(self) -> date: ...
    @property
    def traffic(self) -> Sequence[Traffic]: ...
    @property
    def pollers(self) -> Mapping[tuple[str, str, str], int]: ...
    @property
    def pollers_by_feed(self) -> Mapping[str, int]: ...
    @property
    def aggregators(self) -> Sequence[Reported]: ...


@dataclass(frozen=True, slots=True)
class DayTraffic:
    """Everything served on a day, over all feeds, addresses and families."""

    day: date
    requests: int
    not_modified: int
    bytes_sent: int
    bytes_saved: int


@dataclass(frozen=True, slots=True)
class Readers:
    """A day's readers of one feed through one address with one client family: distinct
    direct pollers plus the subscribers the family's aggregator reported (either may be 0),
    and the requests they made."""

    feed: str
    address: str
    family: str
    readers: int
    requests: int


class ReachStore:
    """The reach tables of `store`'s database (created with its other tables)."""

    def __init__(self, store: Store):
        self.engine = store.engine

    def merge_day(self, counts: Day) -> None:
        """Store `counts` as its day's rows, in one transaction. Idempotent, and a day's
        figures never go down: Redis holds only the counts since it last started, so after a
        restart (or a flush of the reach keys) a row keeps the larger of the stored and the
        counted figures, and a row Redis no longer has is kept as stored. An aggregator's
        count is the latest reported, as stored when Redis has none."""
        day = counts.day
        traffic: Figures = {
            (t.feed, t.address, t.family): (
                t.requests, t.not_modified, t.bytes_sent, t.bytes_saved,
                counts.pollers.get((t.feed, t.address, t.family), 0))
            for t in counts.traffic
        }
        by_feed: Figures = {(feed,): (n,) for feed, n in counts.pollers_by_feed.items()}
        reported: Figures = {(a.aggregator, a.feed_id, a.feed, a.address): (a.subscribers,)
                    for a in counts.aggregators}
        with _connected(self.engine, transaction=True) as conn:
            for table, rows, higher in ((reach_traffic, traffic, True),
                                        (reach_feed_pollers, by_feed, True),
                                        (reach_aggregators, reported, False)):
                keys = [c for c in table.primary_key.columns if c.name != "day"]
                values = [c for c in table.columns if not c.primary_key]
                stored: Figures = {tuple(row[:len(keys)]): tuple(row[len(keys):]) for row in
                          conn.execute(select(*keys, *values).where(table.c.day == day))}
                merged = {**stored, **rows}
                if higher:
                    merged.update({key: tuple(map(max, stored[key], rows[key]))
                                   for key in rows.keys() & stored.keys()})
                conn.execute(delete(table).where(table.c.day == day))
                if merged:
                    conn.execute(insert(table), [
                        {"day": day, **dict(zip((c.name for c in keys), key, strict=True)),
                         **dict(zip((c.name for c in values), figures, strict=True))}
                        for key, figures in merged.items()])

    def prune(self, today: date) -> int:
        """Delete the days older than `RETENTION_DAYS` before `today`; the rows removed."""
        oldest = today - timedelta(days=RETENTION_DAYS - 1)
        removed = 0
        with _connected(self.engine, transaction=True) as conn:
            for table in (reach_traffic, reach_feed_pollers, reach_aggregators):
                removed += conn.execute(delete(table).where(table.c.day < oldest)).rowcount
        return removed

    def subscribers(self, since: date) -> dict[tuple[date, str], int]:
        """Estimated subscribers per (day, feed) from `since` on: the aggregators' reported
        counts plus the distinct direct pollers."""
        pollers = select(reach_feed_pollers.c.day, reach_feed_pollers.c.feed,
                         reach_feed_pollers.c.pollers).where(reach_feed_pollers.c.day >= since)
        reported = (select(reach_aggregators.c.day, reach_aggregators.c.feed,
                           func.sum(reach_aggregators.c.subscribers))
                    .where(reach_aggregators.c.day >= since)
                    .group_by(reach_aggregators.c.day, reach_aggregators.c.feed))
        totals: dict[tuple[date, str], int] = {}
        with _connected(self.engine) as conn:
            for query in (pollers, reported):
                for day, feed, n in conn.execute(query):
                    totals[day, feed] = totals.get((day, feed), 0) + int(n)
        return totals

    def traffic_by_day(self, since: date) -> list[DayTraffic]:
        """What was served each day from `since` on, oldest first."""
        t = reach_traffic.c
        query = (select(t.day, func.sum(t.requests), func.sum(t.not_modified),
                        func.sum(t.bytes_sent), func.sum(t.bytes_saved))
                 .where(t.day >= since).group_by(t.day).order_by(t.day))
        with _connected(self.engine) as conn:
            return [DayTraffic(day, int(r), int(nm), int(sent), int(saved))
                    for day, r, nm, sent, saved in conn.execute(query)]

    def readers(self, day: date) -> list[Readers]:
        """`day`'s readers and requests per (feed, address, family)."""
        t, a = reach_traffic.c, reach_aggregators.c
        served = select(t.feed, t.address, t.family, t.pollers, t.requests).where(t.day == day)
        reported = (select(a.feed, a.address, a.aggregator, func.sum(a.subscribers))
                    .where(a.day == day).group_by(a.feed, a.address, a.aggregator))
        rows: dict[tuple[str, str, str], tuple[int, int]] = {}
        with _connected(self.engine) as conn:
            for feed, address, family, pollers, requests in conn.execute(served):
                rows[feed, address, family] = (int(pollers), int(requests))
            for feed, address, family, subscribers in conn.execute(reported):
                readers, requests = rows.get((feed, address, family), (0, 0))
                rows[feed, address, family] = (readers + int(subscribers), requests)
        return [Readers(feed, address, family, readers, requests)
                for (feed, address, family), (readers, requests) in sorted(rows.items())]
