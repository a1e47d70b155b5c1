"""The reach rollups in SQL, each test on a SQLite file and on a PostgreSQL schema of its own:
a day replaced whole (idempotent), 400 days kept, the report's queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from feedsvc.cache.reach import AggregatorCount, DayReach, TrafficRow
from feedsvc.store import Store
from feedsvc.store.reach import RETENTION_DAYS, DayTraffic, ReachStore, Readers

DAY = date(2026, 11, 27)
CANON, MIRROR = "https://news.example", "https://news-mirror.example"


def day_of(day: date = DAY, *, scale: int = 1) -> DayReach:
    """A day of counts: rss.xml read by newsboat on both addresses and by Feedly on the
    canonical one; atom.xml by a browser."""
    return DayReach(
        day=day,
        traffic=(
            TrafficRow("rss.xml", CANON, "newsboat", 10 * scale, 4 * scale, 1000 * scale,
                       400 * scale),
            TrafficRow("rss.xml", MIRROR, "newsboat", 5 * scale, 1 * scale, 800, 100),
            TrafficRow("rss.xml", CANON, "feedly", 3, 2, 300, 200),
            TrafficRow("news/atom.xml", MIRROR, "browser", 1, 0, 50, 0),
        ),
        pollers={("rss.xml", CANON, "newsboat"): 3 * scale, ("rss.xml", MIRROR, "newsboat"): 2,
                 ("news/atom.xml", MIRROR, "browser"): 1},
        pollers_by_feed={"rss.xml": 4 * scale, "news/atom.xml": 1},
        aggregators=(AggregatorCount("feedly", "feed/abc", "rss.xml", CANON, 131),
                     AggregatorCount("feedly", "feed/def", "rss.xml", CANON, 9)),
    )


@pytest.fixture
def reach(database_url: str) -> Iterator[ReachStore]:
    store = Store(database_url)
    yield ReachStore(store)
    store.close()


def test_a_day_is_stored_and_read_back_as_the_report_needs_it(reach):
    reach.merge_day(day_of())
    assert reach.subscribers(DAY) == {(DAY, "rss.xml"): 4 + 131 + 9, (DAY, "news/atom.xml"): 1}
    assert reach.traffic_by_day(DAY - timedelta(days=3)) == [
        DayTraffic(DAY, 19, 7, 2150, 700)]
    assert reach.readers(DAY) == [
        Readers("news/atom.xml", MIRROR, "browser", 1, 1),
        Readers("rss.xml", MIRROR, "newsboat", 2, 5),  # sorted: "news-" before "news."
        Readers("rss.xml", CANON, "feedly", 140, 3),
        Readers("rss.xml", CANON, "newsboat", 3, 10),
    ]


def test_rolling_a_day_up_again_is_idempotent_and_leaves_other_days_alone(reach):
    before = DAY - timedelta(days=1)
    reach.merge_day(day_of(before))
    reach.merge_day(day_of())
    reach.merge_day(day_of(scale=2))  # later in the day: more counted
    reach.merge_day(day_of(scale=2))  # the same rollup again
    assert reach.subscribers(before)[DAY, "rss.xml"] == 8 + 140
    assert reach.subscribers(before)[before, "rss.xml"] == 4 + 140
    assert [t.requests for t in reach.traffic_by_day(before)] == [19, 20 + 10 + 3 + 1]


def test_a_day_never_loses_figures_when_redis_lost_its_counts(reach):
    """After a Redis restart or a flush, the counts start again from nothing: what was rolled
    up stays, each figure the larger of the two; an aggregator's count is its latest."""
    reach.merge_day(day_of(scale=2))
    reach.merge_day(DayReach(DAY, (), {}, {}, ()))  # flushed
    assert reach.subscribers(DAY) == {(DAY, "rss.xml"): 8 + 140, (DAY, "news/atom.xml"): 1}
    restarted = DayReach(DAY, (TrafficRow("rss.xml", CANON, "newsboat", 1, 0, 10, 0),),
                         {("rss.xml", CANON, "newsboat"): 1}, {"rss.xml": 1},
                         (AggregatorCount("feedly", "feed/abc", "rss.xml", CANON, 120),))
    reach.merge_day(restarted)
    assert reach.subscribers(DAY)[DAY, "rss.xml"] == 8 + 120 + 9
    assert [t.requests for t in reach.traffic_by_day(DAY)] == [20 + 10 + 3 + 1]


def test_days_older_than_the_retention_are_pruned(reach):
    today = DAY
    kept = today - timedelta(days=RETENTION_DAYS - 1)
    gone = kept - timedelta(days=1)
    for day in (gone, kept, today):
        reach.merge_day(day_of(day))
    assert reach.prune(today) == 4 + 2 + 2  # gone's traffic, feed and aggregator rows
    assert {d for d, _ in reach.subscribers(gone)} == {kept, today}


def test_feed_ages_are_the_newest_publication_by_now(database_url):
    from test_store import art  # the store tests' article maker

    store = Store(database_url)
    try:
        store.upsert([art("a", "News/Turkey", hours=1), art("b", "World", hours=2),
                      art("c", "World", hours=1e6)])  # embargoed past now
        now = datetime(2020, 1, 1, tzinfo=UTC)
        ages = store.newest_published(["news/turkey", "world", "", "nothing"], now)
        base = datetime(2017, 12, 11, 10, 0, tzinfo=UTC)
        assert ages == {"news/turkey": base + timedelta(hours=1),
                        "world": base + timedelta(hours=2), "": base + timedelta(hours=2)}
    finally:
        store.close()
