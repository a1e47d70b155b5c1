"""The service on a Sentinel-managed Redis (`REDIS_URL=redis+sentinel://...`): a web process and
a scheduler keep serving whole feeds while Sentinel promotes the replica, and then write to the
new primary: an import after the failover reaches the served feed."""

from __future__ import annotations

import threading
import time

import feedparser
import pytest
import requests

from conftest import DEMO_ARTICLES
from feedsvc.config import ConfigError, settings_from_mapping
from feedsvc.redis_client import SENTINEL_SCHEME as SENTINEL
from feedsvc.redis_client import Endpoints, parse
from processes import Service, article_line
from topology import RedisServers, SentinelTopology, eventually

TURKEY = "/feeds/news/turkey/rss.xml"


@pytest.mark.parametrize(("url", "expected"), [
    ("redis+sentinel://s1:26379,s2:26380/feeds",
     Endpoints(SENTINEL, (("s1", 26379), ("s2", 26380)), None, "feeds", 0)),
    ("redis+sentinel://:p%40ss@[::1]:26379/feeds/3",
     Endpoints(SENTINEL, (("::1", 26379),), "p@ss", "feeds", 3)),
    ("redis+sentinel://:p@s1:26379/feeds?sentinel_password=s%26t",
     Endpoints(SENTINEL, (("s1", 26379),), "p", "feeds", 0, "s&t")),
    ("redis://localhost:6379/0", None),
])
def test_sentinel_urls(url, expected):
    assert parse(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://s1:26379", "must end in /service_name"),
    ("redis+sentinel://s1:26379/feeds/x", "must end in /service_name"),
    ("redis+sentinel://s1:26379/feeds/\u0663", "must end in /service_name"),  # ٣: not ASCII
    ("redis+sentinel://s1:\u0662\u0666\u0663\u0667\u0669/feeds", "is not host:port"),
    ("redis+sentinel://s1/feeds", "'s1' in .* is not host:port"),
    ("redis+sentinel://s1:26379/feeds?password=x", "the one option is sentinel_password"),
    ("redis+cluster://n1:7000?sentinel_password=x", "a cluster URL has no path .* no options"),
])
def test_bad_sentinel_urls_are_refused_at_start(url, message):
    with pytest.raises(ConfigError, match=f"REDIS_URL: .*{message}"):
        settings_from_mapping({}, {"REDIS_URL": url})


def _titles(url: str) -> list[str]:
    response = requests.get(url, headers={"Host": "news.example"}, timeout=5)
    assert response.status_code == 200
    return [e.title for e in feedparser.parse(response.content).entries]


class Poller:
    """Requests `url` back to back in a thread, keeping each answer's status and whether its
    body parsed as a whole feed."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[int | str, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = requests.get(self.url, headers={"Host": "news.example"}, timeout=10)
            except requests.RequestException as exc:
                self.answers.append((repr(exc), False))
                continue
            parsed = feedparser.parse(response.content)
            self.answers.append((response.status_code, not parsed.bozo and len(parsed.entries)))
            time.sleep(0.02)

    def stop(self) -> list[tuple[int | str, bool]]:
        self._stop.set()
        self._thread.join(15)
        return self.answers


def test_serving_goes_on_through_a_failover_and_writes_resume_on_the_new_primary(
        redis_sentinel, spawn, tmp_path):
    service = Service.deploy(spawn, tmp_path, redis_url=redis_sentinel.url,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                             prefix="feedsvc:", refresh_interval=60, leader_lease=3)
    service.import_(DEMO_ARTICLES)
    service.scheduler()
    service.wait_for_refresh()
    url = f"http://127.0.0.1:{service.web()}{TURKEY}"
    before = service.cache.get_state("refresh")

    poller = Poller(url)
    new_primary = redis_sentinel.failover()
    batch = tmp_path / "after.jsonl"
    batch.write_text(article_line("after-failover", "Written after the failover"))
    service.import_(batch)
    eventually(lambda: "Written after the failover" in _titles(url), 20,
               "the import reaches the served feed")
    answers = poller.stop()

    assert len(answers) > 20
    assert {status for status, _ in answers} == {200}
    assert all(whole for _, whole in answers)
    new = redis_sentinel.client(new_primary)
    assert new.get("feedsvc:state:refresh") != before  # the scheduler writes there
    feed = new.hget("feedsvc:feed:https://news.example|news/turkey|rss.xml", "body")
    assert "Written after the failover" in feed
    assert all(p.poll() is None for p in [*service.webs.values(), *service.schedulers])


def test_password_protected_sentinel_and_primary(redis_servers: RedisServers, spawn, tmp_path):
    """Sentinels with a `requirepass` of their own, a primary with another: the URL's
    password reaches the primary and `sentinel_password` the sentinels; without the latter
    the service cannot find its primary and says so."""
    topology = SentinelTopology(redis_servers, password="primary-secret",
                                sentinel_password="sentinel-secret")
    service = Service.deploy(spawn, tmp_path, redis_url=topology.url, prefix="feedsvc:",
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}")
    service.import_(DEMO_ARTICLES)
    refreshed = service.feedsvc("refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    primary = topology.client(topology.primary())
    assert primary.exists("feedsvc:feed:https://news.example|news/turkey|rss.xml")
    port = service.web()
    assert _titles(f"http://127.0.0.1:{port}{TURKEY}")

    service.env["REDIS_URL"] = topology.url.partition("?")[0]
    refused = service.feedsvc("refresh")
    assert refused.returncode != 0
    error = refused.stderr.splitlines()[-1]
    assert error.startswith("Error: refresh failed, cache unavailable: No master found")
    # (redis-py 8.2 adds the sentinels' reply after the error's name)
    assert "AuthenticationError" in error and "Traceback" not in refused.stderr
