"""ReachCounts (feedsvc/cache/reach.py): workers' batches add up per day in real Redis and in
the in-process cache; the day's hashing key is shared by every worker and kept apart from the
counts; Redis holds today and yesterday only."""

from __future__ import annotations

import datetime
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import REDIS_URL, free_port
from feedsvc.cache import (
    AggregatorCount,
    CacheUnavailable,
    DayReach,
    MemoryCache,
    ReachBatch,
    RedisCache,
    TrafficRow,
)
from feedsvc.cache.reach import DAY_SECONDS, KEEP_SECONDS, RedisReach, day_start

# The day the tests run in: Redis keeps a day's counts only until 2.5 days after it (its own
# clock), so a fixed date would expire under the test some day.
DAY = datetime.datetime.now(datetime.UTC).date()
C, M = "https://news.example", "https://news-mirror.example"


def batch(day: datetime.date = DAY) -> ReachBatch:
    return ReachBatch(
        day,
        traffic={("rss.xml", C, "newsboat"): [3, 1, 2000, 1000],
                 ("news/turkey/atom.xml", M, "feedly"): [1, 0, 700, 0]},
        clients={("rss.xml", C, "newsboat"): {("203.0.113.1", "Newsboat/2.36 (Linux x86_64)"),
                                             ("203.0.113.2", "Newsboat/2.36 (Linux x86_64)")}},
        aggregators={("feedly", "", "news/turkey/atom.xml", M): 40})


@pytest.fixture(params=["redis", "memory"])
def counts(request, redis_cache):
    return redis_cache.reach() if request.param == "redis" else MemoryCache().reach()


def test_a_day_nobody_counted_is_empty(counts):
    assert counts.day(DAY) == DayReach(DAY, (), {}, {}, ())


def test_batches_add_up_and_the_latest_aggregator_count_wins(counts):
    counts.record(batch())
    second = batch()
    second.clients = {("rss.xml", C, "newsboat"): {("203.0.113.1", "Newsboat/2.36 (Linux x86_64)")},
                      ("rss.xml", M, "netnewswire"): {("203.0.113.1", "NetNewsWire")}}
    second.aggregators = {("feedly", "", "news/turkey/atom.xml", M): 38,
                          ("feedbin", "42", "rss.xml", C): 7}
    counts.record(second)
    assert counts.day(DAY) == DayReach(
        DAY,
        (TrafficRow("news/turkey/atom.xml", M, "feedly", 2, 0, 1400, 0),
         TrafficRow("rss.xml", C, "newsboat", 6, 2, 4000, 2000)),
        {("rss.xml", C, "newsboat"): 2, ("rss.xml", M, "netnewswire"): 1},
        {"rss.xml": 3},  # the same address and UA through two addresses and families: 3 clients
        (AggregatorCount("feedbin", "42", "rss.xml", C, 7),
         AggregatorCount("feedly", "", "news/turkey/atom.xml", M, 38)))
    assert counts.day(DAY + datetime.timedelta(days=1)).traffic == ()


def test_workers_share_the_days_key_so_a_client_is_counted_once(redis_prefix):
    one, two = (RedisCache.from_url(REDIS_URL, redis_prefix).reach() for _ in range(2))
    for worker in (one, two, one):
        worker.record(batch())
    assert one.day(DAY).pollers == {("rss.xml", C, "newsboat"): 2}


def test_no_address_or_user_agent_is_written_and_the_key_is_apart(redis_client, redis_cache):
    reach = redis_cache.reach()
    reach.record(batch())
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=redis_cache.prefix + "*"))
    day = DAY.isoformat()
    assert keys == sorted([f"{redis_cache.prefix}reach-key:{day}",
                           f"{redis_cache.prefix}reach:{day}:aggregators",
                           f"{redis_cache.prefix}reach:{day}:pollers",
                           f"{redis_cache.prefix}reach:{day}:pollers:rss.xml\t{C}\tnewsboat",
                           f"{redis_cache.prefix}reach:{day}:traffic"])
    written = b"".join(dump_key(redis_client, k) for k in keys)
    for secret in (b"203.0.113.1", b"203.0.113.2", b"Newsboat/2.36 (Linux x86_64)"):
        assert secret not in written


def dump_key(client: redis.Redis, key: str) -> bytes:
    """Every name and value a key holds."""
    kind = client.type(key).decode()
    if kind == "hash":
        return b"".join(k + v for k, v in client.hgetall(key).items())
    if kind == "set":
        return b"".join(client.smembers(key))
    return key.encode() + (client.dump(key) or b"")


def test_counts_expire_after_yesterday_and_the_key_soon_after_its_day(redis_client, redis_cache):
    today = datetime.datetime.now(datetime.UTC).date()
    redis_cache.reach().record(batch(today))
    ends = day_start(today) + KEEP_SECONDS
    for key in redis_client.scan_iter(match=redis_cache.prefix + "reach:*"):
        assert abs(redis_client.expiretime(key) - ends) <= 1, key
    key_ends = redis_client.expiretime(f"{redis_cache.prefix}reach-key:{today.isoformat()}")
    assert day_start(today) + DAY_SECONDS < key_ends <= day_start(today) + DAY_SECONDS + 3600
    assert time.time() < key_ends


def test_the_in_process_counts_keep_today_and_yesterday_only():
    reach = MemoryCache().reach()
    for days in range(3):
        reach.record(batch(DAY + datetime.timedelta(days=days)))
    assert reach.day(DAY).traffic == ()
    assert reach.day(DAY + datetime.timedelta(days=1)).traffic != ()


def test_redis_unreachable_is_cache_unavailable():
    reach = RedisReach(redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)), "nowhere:")
    with pytest.raises(CacheUnavailable):
        reach.record(batch())
    with pytest.raises(CacheUnavailable):
        reach.day(DAY)


def test_a_late_batch_of_a_day_whose_key_is_gone_counts_its_traffic_but_no_clients(
        redis_client, redis_cache):
    """A worker flushing a day more than the grace after it ended (its key expired) must not
    fail, nor hash its clients under a new key (they would count twice): traffic only. The key
    expires by Redis's clock, so "late" is too (under tests/clock_ahead the two differ)."""
    counts = redis_cache.reach()
    redis_now = datetime.datetime.fromtimestamp(redis_client.time()[0], datetime.UTC)
    late = (redis_now - datetime.timedelta(days=1, hours=2)).date()
    counts.record(batch(late))
    held = counts.day(late)
    assert sum(row.requests for row in held.traffic) == 4
    assert held.pollers == {}
