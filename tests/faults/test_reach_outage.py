"""Reach counting through a Redis restart: the web process's counts of the outage are dropped
with one WARNING, serving goes on, and counting resumes on the Redis that comes back."""

from __future__ import annotations

import datetime
import time

import requests

from feedsvc.cache import TrafficRow
from feedsvc.cache.reach import DAY_SECONDS

C = "https://news.example"
NNW = "NetNewsWire (RSS Reader; https://netnewswire.com/)"
NEWSBOAT = "Newsboat/2.36 (Linux x86_64)"


def poll(port: int, user_agent: str, times: int) -> int:
    """`times` GETs of the site's RSS feed; its size."""
    for _ in range(times):
        response = requests.get(f"http://127.0.0.1:{port}/feeds/rss.xml", timeout=10,
                                headers={"Host": "news.example", "User-Agent": user_agent,
                                         "Accept-Encoding": "identity"})
        assert response.status_code == 200
    return len(response.content)


def wait_for_traffic(cache, expected: set[TrafficRow], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    day = datetime.datetime.now(datetime.UTC).date()
    while (held := set(cache.reach().day(day).traffic)) != expected:
        assert time.monotonic() < deadline, held
        time.sleep(0.2)


def test_counting_resumes_after_a_redis_restart(deployment, private_redis, spawn):
    assert time.time() % DAY_SECONDS < DAY_SECONDS - 120, "too close to midnight, run again"
    server = private_redis(persistent=False)
    deployed = deployment(server, reach=True)
    port = deployed.web(workers=1)
    poll(port, NNW, 3)
    size = poll(port, NEWSBOAT, 2)
    wait_for_traffic(deployed.cache, {TrafficRow("rss.xml", C, "netnewswire", 3, 0, 3 * size, 0),
                                      TrafficRow("rss.xml", C, "newsboat", 2, 0, 2 * size, 0)})

    server.stop()
    for _ in range(3):  # several flushes fail while Redis is away; serving goes on
        poll(port, NNW, 2)
        time.sleep(1.2)
    server.start()  # empty: the counts of the day so far are gone with it
    poll(port, NEWSBOAT, 2)
    wait_for_traffic(deployed.cache, {TrafficRow("rss.xml", C, "newsboat", 2, 0, 2 * size, 0)})
    day = datetime.datetime.now(datetime.UTC).date()
    assert deployed.cache.reach().day(day).pollers == {("rss.xml", C, "newsboat"): 1}

    spawn.stop_all()
    log = spawn.log(deployed.webs[port])
    assert log.count("reach: the cache is unavailable") == 1, log
    assert log.count("reach: the cache is back, counting resumed") == 1, log
