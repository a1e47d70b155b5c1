"""The store (PostgreSQL) stopped while the scheduler refreshes."""

from __future__ import annotations

import os
import signal
import time

import requests

from processes import article_line

from .readers import HOSTS, Readers, served_titles, wait_for_title

TURKEY = "/feeds/news/turkey/rss.xml"


def _health(port: int) -> dict:
    response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_store_outage_serves_the_last_good_feeds_and_refresh_catches_up(
    deployment, private_redis, private_postgres, tmp_path, spawn
):
    """An import commits and announces itself, then PostgreSQL stops before the scheduler
    (held with SIGSTOP) gets to it: the refresh it then runs fails; the feeds keep their last
    good content, /healthz says degraded (store down, cache up), and a web process started
    during the outage serves from the cache. When PostgreSQL is back the refresh catches up:
    the change is served on every address, with everything published before it."""
    deployed = deployment(private_redis(), database_url=private_postgres.url,
                          refresh_interval=1, leader_lease=2)
    scheduler = deployed.scheduler()
    deployed.wait_for_refresh()
    port = deployed.web(workers=2)
    before = served_titles(port, TURKEY, HOSTS[0])
    with Readers(port) as readers:
        os.kill(scheduler.pid, signal.SIGSTOP)
        batch = tmp_path / "late.jsonl"
        batch.write_text(article_line("before-outage", "Committed as the store went down"))
        deployed.import_(batch)
        private_postgres.stop()
        at_stop = readers.requests
        os.kill(scheduler.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while "refresh failed, store unavailable" not in spawn.log(scheduler):
            assert time.monotonic() < deadline, spawn.log(scheduler)[-3000:]
            time.sleep(0.1)
        health = _health(port)
        assert (health["status"], health["store"], health["cache"]) == ("degraded", False, True)
        started_in_outage = deployed.web()
        for host in HOSTS:
            assert served_titles(started_in_outage, TURKEY, host)[:3] == before[:3], host
        assert served_titles(port, TURKEY, HOSTS[0]) == before
        served_during = readers.requests - at_stop
        private_postgres.start()
        after = wait_for_title(port, TURKEY, "Committed as the store went down", 20)
        assert _health(port)["status"] == "ok"
    readers.assert_clean(at_least=10)
    assert served_during >= 3  # while the store was down
    assert after[1:] == before[: len(after) - 1]  # nothing published before is lost
    assert wait_for_title(started_in_outage, TURKEY, "Committed as the store went down", 10)
