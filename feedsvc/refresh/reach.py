"""The reach rollup (docs/contracts.md, "Reach"): the scheduler's leader, every
`reach.rollup_interval` seconds, copies today's and yesterday's counts from the cache (which
holds no more) into the store, prunes the store past its retention, builds the report from
the store, and publishes it to the cache as `reach.json` and as the operator page, which the
web serves from there (`/admin/reach.json`, `/admin/`).

The report's shape is documented in docs/contracts.md; it carries everything the page shows,
so scripts read the same figures as people.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feedsvc.render.admin import admin_page
from feedsvc.store import Store
from feedsvc.store.reach import ReachStore, Readers

if TYPE_CHECKING:
    from feedsvc.cache import FeedCache
    from feedsvc.cache.lease import LeaderWrites
    from feedsvc.cache.reach import ReachCounts

log = logging.getLogger(__name__)

REPORT_DAYS = 90       # the days of history the report (and its charts) carry
TOP_READERS = 3        # client families named per feed in the table
WEEK = timedelta(days=7)
# Cache state names: the report, its page, and the refreshes' freshness records.
REPORT_STATE, PAGE_STATE, FRESHNESS_STATE = "reach.json", "reach.html", "reach.freshness"
FRESHNESS_KEPT = 300   # refreshes whose import-to-served time is kept


def record_freshness(cache: FeedCache | LeaderWrites, newest_change: datetime,
                     published: datetime, feeds: int) -> None:
    """Add a refresh's freshness (how long after its newest change's commit its feeds were
    published) to the last `FRESHNESS_KEPT` kept in the cache's state."""
    kept = json.loads(cache.get_state(FRESHNESS_STATE) or "[]")
    kept.append({"at": published.isoformat(timespec="seconds"),
                 "seconds": round((published - newest_change).total_seconds(), 3),
                 "feeds": feeds})
    cache.set_state(FRESHNESS_STATE, json.dumps(kept[-FRESHNESS_KEPT:]))


@dataclass(frozen=True, slots=True)
class RollupResult:
    days: tuple[date, ...]
    pruned: int
    report: dict[str, Any]
    seconds: float


class ReachRollup:
    """Counts (the cache's `ReachCounts`) into the store, the report back into the cache
    (`publish`: the leader's fenced writes, or the cache itself)."""

    def __init__(self, store: Store, counts: ReachCounts, publish: FeedCache | LeaderWrites,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.reach = ReachStore(store)
        self.counts = counts
        self.publish = publish
        self.clock = clock

    def run(self) -> RollupResult:
        started = time.perf_counter()
        now = self.clock()
        today = now.astimezone(UTC).date()
        days = (today - timedelta(days=1), today)
        for day in days:
            self.reach.merge_day(self.counts.day(day))
        pruned = self.reach.prune(today)
        report = self.report(now)
        self.publish.set_state(REPORT_STATE, json.dumps(report, separators=(",", ":")))
        self.publish.set_state(PAGE_STATE, admin_page(report))
        result = RollupResult(days, pruned, report, time.perf_counter() - started)
        log.debug("reach rollup of %s and %s in %.3fs (%d old rows pruned)",
                  *days, result.seconds, pruned)
        return result

    def report(self, now: datetime) -> dict[str, Any]:
        """The report as of `now`, from the store (and the freshness records in the cache)."""
        today = now.astimezone(UTC).date()
        first = today - timedelta(days=REPORT_DAYS - 1)
        days = [first + timedelta(days=n) for n in range(REPORT_DAYS)]
        subscribers = self.reach.subscribers(first)
        readers = self.reach.readers(today)
        feeds = sorted({feed for _, feed in subscribers} | {r.feed for r in readers})
        ages = self.store.newest_published({_section(feed) for feed in feeds}, now)
        table = [self._feed(feed, days, subscribers, readers, ages.get(_section(feed)), now)
                 for feed in feeds]
        table.sort(key=lambda row: (-row["subscribers"], row["feed"]))
        return {
            "version": 1,
            "generated_at": now.astimezone(UTC).isoformat(timespec="seconds"),
            "today": today.isoformat(),
            "days": [d.isoformat() for d in days],
            "feeds": table,
            "addresses": _shares(readers, lambda r: r.address),
            "families": _families(readers),
            "traffic": [
                {"day": t.day.isoformat(), "requests": t.requests,
                 "not_modified": t.not_modified, "bytes_sent": t.bytes_sent,
                 "bytes_saved": t.bytes_saved,
                 "not_modified_ratio": round(t.not_modified / t.requests, 4) if t.requests
                 else 0.0}
                for t in self.reach.traffic_by_day(first)
            ],
            "freshness": json.loads(self.publish.get_state(FRESHNESS_STATE) or "[]"),
        }

    @staticmethod
    def _feed(feed: str, days: list[date], subscribers: dict[tuple[date, str], int],
              readers: list[Readers], newest: datetime | None, now: datetime) -> dict[str, Any]:
        today, week_ago = days[-1], days[-1] - WEEK
        count = subscribers.get((today, feed), 0)
        before = subscribers.get((week_ago, feed))
        return {
            "feed": feed,
            "subscribers": count,
            "week_ago": before,
            "change": None if before is None else count - before,
            "history": [subscribers.get((d, feed), 0) for d in days],
            "top_readers": _shares((r for r in readers if r.feed == feed),
                                   lambda r: r.family)[:TOP_READERS],
            "newest_item": newest.isoformat(timespec="seconds") if newest else None,
            "age_seconds": round((now - newest).total_seconds()) if newest else None,
        }


def _section(feed: str) -> str:
    """The section path of a feed document's path (`news/turkey/rss.xml` -> `news/turkey`)."""
    return feed.rpartition("/")[0]


def _shares(readers: Iterable[Readers], key: Callable[[Readers], str]) -> list[dict[str, Any]]:
    """Readers summed by `key`, most first, each with its share of the total."""
    totals: dict[str, int] = {}
    for row in readers:
        totals[key(row)] = totals.get(key(row), 0) + row.readers
    whole = sum(totals.values())
    return [{"name": name, "readers": n, "share": round(n / whole, 4) if whole else 0.0}
            for name, n in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]


def _families(readers: list[Readers]) -> list[dict[str, Any]]:
    """Today's polls (requests) and readers by client family, most polls first."""
    totals: dict[str, list[int]] = {}
    for row in readers:
        polls = totals.setdefault(row.family, [0, 0])
        polls[0] += row.requests
        polls[1] += row.readers
    return [{"name": name, "requests": requests, "readers": n}
            for name, (requests, n) in sorted(totals.items(),
                                              key=lambda item: (-item[1][0], item[0]))]
