"""Reach counted on the hit path and the miss path, over real HTTP into the real Redis
(feedsvc/web/reach.py): a scripted stream of readers is counted exactly, across a UTC day
boundary, and no client address or User-Agent is written to Redis or the logs."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
import tracemalloc

import pytest
import redis
import requests

from conftest import DEMO_ARTICLES
from feedsvc.cache import AggregatorCount, MemoryCache, TrafficRow
from feedsvc.cache.reach import DAY_SECONDS, MemoryReach, day_start
from feedsvc.ingest.importer import Importer

C, M = "https://news.example", "https://news-mirror.example"
HOSTS = {C: "news.example", M: "news-mirror.example"}
FEEDLY = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; {} subscribers; like FeedFetcher-Google)"
FEEDLY_131, FEEDLY_140 = FEEDLY.format(131), FEEDLY.format(140)
FEEDBIN = "Feedbin feed-id:99 - 5 subscribers"
NNW = "NetNewsWire (RSS Reader; https://netnewswire.com/)"
NEWSBOAT = "Newsboat/2.36 (Linux x86_64)"
ROKU = "Roku/DVP-9.10 (519.10E04111A)"
CURL = "curl/8.5.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
# (User-Agent, client address, address, path, method, conditional on the last ETag)
STREAM = [
    (FEEDLY_131, "192.0.2.10", C, "/feeds/rss.xml", "GET", False),
    (FEEDLY_140, "192.0.2.11", C, "/feeds/rss.xml", "GET", False),
    (FEEDBIN, "192.0.2.10", M, "/feeds/rss.xml", "GET", False),
    (NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", False),
    (NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", True),
    (NNW, "198.51.100.2", C, "/feeds/rss.xml", "GET", False),
    (NEWSBOAT, "198.51.100.1", M, "/feeds/news/turkey/atom.xml", "GET", False),
    (ROKU, "198.51.100.3", M, "/feeds/roku.json", "GET", False),
    (CURL, "203.0.113.9", C, "/feeds/rss.xml", "GET", False),
    (FIREFOX, "203.0.113.7", C, "/feeds/rss.xml", "HEAD", False),
    (FIREFOX, "203.0.113.7", C, "/", "GET", False),             # not a feed: not counted
    (FIREFOX, "203.0.113.7", C, "/feeds.opml", "GET", False),   # nor this
    (FIREFOX, "203.0.113.7", C, "/feeds/nowhere/rss.xml", "GET", False),  # 404
]
SECRETS = sorted({ua for ua, *_ in STREAM} | {ip for _, ip, *_ in STREAM})


@pytest.fixture
def server(settings, store, redis_cache, live_server_factory):
    """The app on an empty cache: each document's first request is a miss (the Flask route),
    the next ones hits (the fast path). Behind a trusted proxy, so the stream's client
    addresses come in X-Forwarded-For."""
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    return live_server_factory(
        dataclasses.replace(settings, trusted_proxies=("127.0.0.1",), reach_enabled=True),
        store, redis_cache)


def play(server, stream) -> dict[tuple[str, str], int]:
    """Send `stream`; the identity body size of each (address, path) answered."""
    sizes: dict[tuple[str, str], int] = {}
    etags: dict[tuple[str, str], str] = {}
    for user_agent, client, address, path, method, conditional in stream:
        headers = {"Host": HOSTS[address], "User-Agent": user_agent,
                   "X-Forwarded-For": client, "Accept-Encoding": "identity"}
        if conditional:
            headers["If-None-Match"] = etags[address, path]
        response = requests.request(method, server.url + path, headers=headers, timeout=10)
        assert response.status_code in (200, 304, 404), (path, response.status_code)
        if response.status_code == 200 and method == "GET":
            sizes[address, path] = len(response.content)
            etags[address, path] = response.headers["ETag"]
    return sizes


def counter(server):
    return server.app.extensions["feedsvc"].reach


def today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def test_a_scripted_stream_is_counted_exactly(server, redis_cache):
    sizes = play(server, STREAM)
    counter(server).flush()
    rss_c, rss_m = sizes[C, "/feeds/rss.xml"], sizes[M, "/feeds/rss.xml"]
    reach = redis_cache.reach().day(today())
    assert set(reach.traffic) == {
        TrafficRow("news/turkey/atom.xml", M, "newsboat", 1, 0,
                   sizes[M, "/feeds/news/turkey/atom.xml"], 0),
        TrafficRow("roku.json", M, "roku", 1, 0, sizes[M, "/feeds/roku.json"], 0),
        TrafficRow("rss.xml", C, "bot", 1, 0, rss_c, 0),
        TrafficRow("rss.xml", C, "browser", 1, 0, 0, 0),  # HEAD: nothing sent, nothing saved
        TrafficRow("rss.xml", C, "feedly", 2, 0, 2 * rss_c, 0),
        TrafficRow("rss.xml", C, "netnewswire", 3, 1, 2 * rss_c, rss_c),
        TrafficRow("rss.xml", M, "feedbin", 1, 0, rss_m, 0),
    }
    assert reach.pollers == {("news/turkey/atom.xml", M, "newsboat"): 1,
                             ("roku.json", M, "roku"): 1,
                             ("rss.xml", C, "browser"): 1,
                             ("rss.xml", C, "netnewswire"): 2}
    assert reach.pollers_by_feed == {"news/turkey/atom.xml": 1, "roku.json": 1, "rss.xml": 3}
    assert reach.aggregators == (AggregatorCount("feedbin", "99", "rss.xml", M, 5),
                                 AggregatorCount("feedly", "", "rss.xml", C, 140))


def test_the_background_thread_writes_the_counts_within_seconds(server, redis_cache):
    play(server, STREAM[:1])
    deadline = time.monotonic() + 5
    while not redis_cache.reach().day(today()).traffic:
        assert time.monotonic() < deadline, "nothing written in 5 s"
        time.sleep(0.1)


def test_a_user_agent_no_counter_can_read_stops_no_counting(server, redis_cache):
    """A subscriber count of 4,400 digits (more than int() reads) counts the request with no
    subscribers, and the flushing thread goes on: it died on it, and counted nothing after."""
    play(server, [(FEEDLY.format("9" * 4400), "192.0.2.20", C, "/feeds/rss.xml", "GET", False)])
    time.sleep(2 * counter(server).interval)  # the thread's flush has met it
    play(server, [(NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", False)])
    deadline = time.monotonic() + 5
    while {r.family for r in redis_cache.reach().day(today()).traffic} != {"feedly",
                                                                          "netnewswire"}:
        assert time.monotonic() < deadline, "the later request was not counted in 5 s"
        time.sleep(0.1)
    assert redis_cache.reach().day(today()).aggregators == ()


def test_requests_either_side_of_midnight_count_in_their_own_day(server, redis_client,
                                                                 redis_cache):
    day = today()
    midnight = day_start(day) + DAY_SECONDS
    now = [midnight - 0.5]
    counter(server).clock = lambda: now[0]
    play(server, [(NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", False)] * 2)
    now[0] = midnight + 0.5
    play(server, [(NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", False)])
    counter(server).flush()  # one flush holding both days' counts
    before, after = (redis_cache.reach().day(d) for d in (day, day + datetime.timedelta(days=1)))
    assert [(r.family, r.requests) for r in before.traffic] == [("netnewswire", 2)]
    assert [(r.family, r.requests) for r in after.traffic] == [("netnewswire", 1)]
    assert before.pollers_by_feed == after.pollers_by_feed == {"rss.xml": 1}
    keys = [redis_client.get(f"{redis_cache.prefix}reach-key:{d}")
            for d in (day, day + datetime.timedelta(days=1))]
    assert None not in keys and keys[0] != keys[1]  # the hashing key rotates with the day


def test_no_client_address_or_user_agent_reaches_redis_or_the_logs(server, redis_client,
                                                                   redis_cache, caplog):
    caplog.set_level(logging.DEBUG)
    play(server, STREAM)
    counter(server).flush()
    assert redis_cache.reach().day(today()).traffic  # something was written
    written = everything_under(redis_client, redis_cache.prefix)
    logged = caplog.text.encode()
    for secret in SECRETS:
        assert secret.encode() not in written, secret
        assert secret.encode() not in logged, secret


def everything_under(client: redis.Redis, prefix: str) -> bytes:
    """Every key name under `prefix`, and every field, member and value its keys hold."""
    held = []
    for key in client.scan_iter(match=prefix + "*"):
        kind = client.type(key).decode()
        held.append(key)
        if kind == "hash":
            held += [b for pair in client.hgetall(key).items() for b in pair]
        elif kind == "set":
            held += list(client.smembers(key))
        elif kind == "string":  # HyperLogLogs and the day's key among them
            held.append(client.get(key))
        else:
            held.append(client.dump(key))
    return b"\n".join(held)


def test_the_in_process_cache_counts_too(settings, store, live_server_factory):
    """`feedsvc serve` and `demo`: no Redis, the counts in the process's memory."""
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    cache = MemoryCache()
    server = live_server_factory(dataclasses.replace(settings, reach_enabled=True), store, cache)
    play(server, STREAM[3:6])
    counter(server).flush()
    reach = cache.reach().day(today())
    assert [(r.family, r.requests, r.not_modified) for r in reach.traffic] == [
        ("netnewswire", 3, 1)]
    assert reach.pollers_by_feed == {"rss.xml": 1}  # the test client's one address


def test_counting_off_means_no_counter_and_nothing_written(settings, store, redis_client,
                                                           redis_cache, live_server_factory):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    server = live_server_factory(settings, store, redis_cache)
    assert not settings.reach_enabled
    assert counter(server) is None
    play(server, STREAM)
    assert not list(redis_client.scan_iter(match=redis_cache.prefix + "reach*"))


def test_the_count_an_aggregator_reported_last_wins_within_one_flush(settings, store,
                                                                     live_server_factory):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    cache = MemoryCache()
    server = live_server_factory(dataclasses.replace(settings, reach_enabled=True), store, cache)
    play(server, [(ua, "192.0.2.10", C, "/feeds/rss.xml", "GET", False)
                  for ua in (FEEDLY_131, FEEDLY_140, FEEDLY_131)])
    counter(server).flush()
    assert cache.reach().day(today()).aggregators == (
        AggregatorCount("feedly", "", "rss.xml", C, 131),)


class RecordedBatches:
    """The real counts of a cache, noting each batch a worker records into them."""

    def __init__(self, counts):
        self.counts = counts
        self.batches = []

    def record(self, batch):
        self.batches.append(batch)
        return self.counts.record(batch)

    def day(self, day):
        return self.counts.day(day)


def test_a_client_already_recorded_today_is_not_sent_again(server, redis_cache):
    """Most polls come from readers counted earlier in the day: only their traffic is sent,
    not their address to parse, hash and add to a HyperLogLog again."""
    recorded = counter(server).counts = RecordedBatches(counter(server).counts)
    poll = [(NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", False)]
    play(server, poll)
    counter(server).flush()
    play(server, [*poll, (NNW, "198.51.100.2", C, "/feeds/rss.xml", "GET", False)])
    counter(server).flush()
    first, second = recorded.batches
    assert first.clients == {("rss.xml", C, "netnewswire"): {("198.51.100.1", NNW)}}
    assert second.clients == {("rss.xml", C, "netnewswire"): {("198.51.100.2", NNW)}}
    reach = redis_cache.reach().day(today())
    assert [(r.requests, reach.pollers[r.feed, r.address, r.family]) for r in reach.traffic] == [
        (3, 2)]


def test_clients_are_counted_again_when_the_days_counts_started_over(server, redis_client,
                                                                     redis_cache):
    """Redis back empty between two flushes, no flush having failed (a fast restart, a
    FLUSHDB): the day's key is made anew, the worker sees it at its next flush and forgets
    the clients it remembered, so each is recorded again at its next request."""
    poll = [(NNW, "198.51.100.1", C, "/feeds/rss.xml", "GET", False)]
    play(server, poll)
    counter(server).flush()
    redis_client.delete(*redis_client.scan_iter(match=redis_cache.prefix + "reach*"))
    play(server, poll)
    counter(server).flush()  # the client was remembered: traffic only, and a new key seen
    assert redis_cache.reach().day(today()).pollers == {}
    play(server, poll)
    counter(server).flush()
    reach = redis_cache.reach().day(today())
    assert [(r.requests, r.family) for r in reach.traffic] == [(2, "netnewswire")]
    assert reach.pollers == {("rss.xml", C, "netnewswire"): 1}


def test_a_worker_whose_flush_is_held_up_keeps_bounded_memory(monkeypatch):
    """49k requests with 20 KB User-Agents grew a worker by 1 GB while its flush was not
    running: what waits for the flush is bounded (a tenth of the limits here, so that the test
    is quick), and a User-Agent is cut to a kilobyte before it is kept."""
    import feedsvc.web.reach as module
    from feedsvc.web.responses import Answer

    monkeypatch.setattr(module, "NEW_LIMIT", 500, raising=False)
    monkeypatch.setattr(module, "KINDS_LIMIT", 500, raising=False)
    counter = module.ReachCounter(MemoryCache().reach(), ())
    answer = Answer(200, [], b"x" * 100, 100)
    tracemalloc.start()
    try:
        with counter._flushing:  # the flush is held up (a slow cache, say)
            base = tracemalloc.get_traced_memory()[0]
            for n in range(5_000):
                environ = {"HTTP_USER_AGENT": f"{n:05d}" + "U" * 20_000,
                           "REMOTE_ADDR": "203.0.113.1", "REQUEST_METHOD": "GET"}
                counter.answered(environ, "", "rss.xml", C, answer)
            held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        counter.close()
    # 500 User-Agents of 1 KB each, shared by the two bounds, and their tuples: about 1 MiB
    assert held < 2 * 2**20, f"{held / 2**20:.1f} MiB held for the flush"


def test_a_held_up_flush_keeps_no_more_of_x_forwarded_for_than_is_read(monkeypatch):
    """The same with 20 KB X-Forwarded-For headers, kept whole for the flush (10 MB for 500
    clients here): only the tail that names the client (through trusted proxies) is kept."""
    import feedsvc.web.reach as module
    from feedsvc.web.responses import Answer

    monkeypatch.setattr(module, "NEW_LIMIT", 500, raising=False)
    counter = module.ReachCounter(MemoryCache().reach(), ("127.0.0.1",))
    answer = Answer(200, [], b"x" * 100, 100)
    tracemalloc.start()
    try:
        with counter._flushing:
            base = tracemalloc.get_traced_memory()[0]
            for n in range(5_000):
                environ = {"HTTP_USER_AGENT": NNW, "REMOTE_ADDR": "127.0.0.1",
                           "HTTP_X_FORWARDED_FOR": "10.0.0.1, " * 2_000 + f"198.51.{n // 250}"
                                                   f".{n % 250}", "REQUEST_METHOD": "GET"}
                counter.answered(environ, "", "rss.xml", C, answer)
            held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        counter.close()
    assert held < 1 * 2**20, f"{held / 2**20:.1f} MiB held for the flush"
    # the newest NEW_LIMIT clients, each still told apart by the address its proxy wrote
    assert counter.counts.day(today()).pollers == {("rss.xml", C, "netnewswire"): 500}


class _FailingOnce(MemoryReach):
    """Counts whose first write fails with an error nobody planned for."""

    failed = False

    def record(self, batch):
        if not self.failed:
            self.failed = True
            raise RuntimeError("an unforeseen failure")
        return super().record(batch)


def test_a_flush_that_fails_unforeseen_loses_its_batch_and_counting_goes_on(caplog):
    from feedsvc.web.reach import ReachCounter
    from feedsvc.web.responses import Answer

    counts = _FailingOnce()
    counter = ReachCounter(counts, (), interval=0.05)
    environ = {"HTTP_USER_AGENT": NNW, "REMOTE_ADDR": "203.0.113.1", "REQUEST_METHOD": "GET"}
    try:
        counter.answered(environ, "", "rss.xml", C, Answer(200, [], b"x", 1))
        deadline = time.monotonic() + 5
        while not counts.failed:
            assert time.monotonic() < deadline, "no flush in 5 s"
            time.sleep(0.02)
        counter.answered(environ, "", "rss.xml", C, Answer(304, [], b"", 1))
        while not counts.day(today()).traffic:
            assert time.monotonic() < deadline, "nothing counted after the failure"
            time.sleep(0.02)
    finally:
        counter.close()
    assert counts.day(today()).traffic == (TrafficRow("rss.xml", C, "netnewswire", 1, 1, 0, 1),)
    # (the restarted thread's INFO "running again" may come before close() or not)
    failures = [r for r in caplog.records
                if r.name == "feedsvc.supervised" and r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in failures] == [
        "reach-flush: a batch could not be counted and is dropped, starting again in 0.1 s"]
