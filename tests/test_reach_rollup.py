"""The reach rollup: counts in real Redis -> the store (SQLite and PostgreSQL) -> the report and
the page in the cache; across a day boundary (the clock injected) and across a flush of the
reach keys in Redis, after which what was rolled up survives in SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest

from clocks import Clock
from feedsvc.cache.reach import ReachBatch
from feedsvc.refresh.reach import PAGE_STATE, REPORT_STATE, ReachRollup, record_freshness
from feedsvc.store import Store

CANON, MIRROR = "https://news.example", "https://news-mirror.example"
# Today or later: Redis keeps a day's hashing key only until an hour after the day ends.
DAY = datetime.now(UTC).date()


def batch(day: date, clients: int, *, feedly: int = 131) -> ReachBatch:
    """`clients` newsboat pollers of rss.xml on the canonical address (one request each, the
    first a 200 and the rest 304s), one of them on the mirror too, and Feedly reporting."""
    addresses = {(f"203.0.113.{n}", "newsboat/2.30") for n in range(clients)}
    return ReachBatch(
        day,
        traffic={("rss.xml", CANON, "newsboat"): [clients, clients - 1, 5000, 5000 * (clients - 1)],
                 ("rss.xml", MIRROR, "newsboat"): [1, 0, 5000, 0],
                 ("rss.xml", CANON, "feedly"): [1, 1, 0, 5000]},
        clients={("rss.xml", CANON, "newsboat"): addresses,
                 ("rss.xml", MIRROR, "newsboat"): {("203.0.113.0", "newsboat/2.30")}},
        aggregators={("feedly", "", "rss.xml", CANON): feedly},
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def test_a_rollup_publishes_the_report_and_the_page(store, redis_cache):
    redis_cache.reach().record(batch(DAY, 5))
    clock = Clock(datetime.combine(DAY, time(12), UTC))
    ReachRollup(store, redis_cache.reach(), redis_cache, clock).run()
    report = json.loads(redis_cache.get_state(REPORT_STATE))
    (feed,) = report["feeds"]
    # 5 distinct pollers (the mirror's one is one of them) + Feedly's 131
    assert (feed["feed"], feed["subscribers"], feed["change"]) == ("rss.xml", 136, None)
    assert feed["top_readers"] == [  # per address: the poller on both counts twice
        {"name": "feedly", "readers": 131, "share": round(131 / 137, 4)},
        {"name": "newsboat", "readers": 6, "share": round(6 / 137, 4)}]
    assert {a["name"]: a["readers"] for a in report["addresses"]} == {CANON: 136, MIRROR: 1}
    assert {f["name"]: f["requests"] for f in report["families"]} == {"newsboat": 6,
                                                                      "feedly": 1}
    assert report["traffic"] == [{"day": DAY.isoformat(), "requests": 7, "not_modified": 5,
                                  "bytes_sent": 10000, "bytes_saved": 25000,
                                  "not_modified_ratio": round(5 / 7, 4)}]
    assert len(report["days"]) == 90 and report["days"][-1] == DAY.isoformat()
    assert "136" in redis_cache.get_state(PAGE_STATE)


def test_the_day_boundary_and_a_flush_of_the_reach_keys(store, redis_cache, redis_client,
                                                        redis_prefix):
    clock = Clock(datetime.combine(DAY, time(23, 59, 59), UTC))
    rollup = ReachRollup(store, redis_cache.reach(), redis_cache, clock)
    redis_cache.reach().record(batch(DAY, 5))
    rollup.run()
    clock.now += timedelta(seconds=2)  # the next UTC day
    redis_cache.reach().record(batch(DAY + timedelta(days=1), 2, feedly=140))
    report = rollup.run().report
    history = report["feeds"][0]["history"]
    assert report["today"] == (DAY + timedelta(days=1)).isoformat() and history[-2:] == [136, 142]
    # Redis loses the reach keys (a restart without persistence, say), then a rollup runs
    reach_keys = list(redis_client.scan_iter(match=f"{redis_prefix}reach*"))
    assert reach_keys
    redis_client.delete(*reach_keys)
    report = rollup.run().report
    assert report["feeds"][0]["history"][-2:] == [136, 142]
    assert report["feeds"][0]["subscribers"] == 142
    # and a week later the change is against the day seven days before
    clock.now += timedelta(days=7)
    redis_cache.reach().record(batch(clock.now.date(), 3, feedly=150))
    report = rollup.run().report
    assert (report["feeds"][0]["subscribers"], report["feeds"][0]["week_ago"],
            report["feeds"][0]["change"]) == (153, 142, 11)


def test_freshness_is_kept_per_refresh_and_shown(store, redis_cache):
    published = datetime(2026, 11, 27, 12, tzinfo=UTC)  # no counts needed: any day
    for n in range(305):
        record_freshness(redis_cache, published - timedelta(milliseconds=100 + n), published, 3)
    report = ReachRollup(store, redis_cache.reach(), redis_cache, Clock(published)).run().report
    assert len(report["freshness"]) == 300
    assert report["freshness"][-1] == {"at": "2026-11-27T12:00:00+00:00", "seconds": 0.404,
                                       "feeds": 3}


def test_feedsvc_reach_rollup_runs_one_rollup(tmp_path, redis_cache, redis_prefix):
    from conftest import REDIS_URL
    from processes import BIN, run, write_config

    redis_cache.reach().record(batch(datetime.now(UTC).date(), 2))
    env = {"FEEDSVC_CONFIG": str(write_config(tmp_path, redis_prefix)), "REDIS_URL": REDIS_URL,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}"}
    done = run([str(BIN / "feedsvc"), "reach", "rollup"], env)
    assert done.returncode == 0, done.stderr
    assert "1 feeds, 133 subscribers today, 0 old rows pruned" in done.stderr
    assert json.loads(redis_cache.get_state(REPORT_STATE))["feeds"][0]["subscribers"] == 133
    down = run([str(BIN / "feedsvc"), "reach", "rollup"],
               {**env, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert down.returncode == 1
    assert len(down.stderr.splitlines()) == 1 and "reach rollup failed" in down.stderr
