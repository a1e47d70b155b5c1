"""The per-client rate limit: token buckets with bounded memory, who counts as the client, and
429 with Retry-After over real HTTP, in front of the fast path; off unless configured."""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from conftest import DEMO_ARTICLES
from feedsvc.build import FeedBuilder
from feedsvc.config import ConfigError, settings_from_mapping
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from feedsvc.web.fastpath import FeedFastPath
from feedsvc.web.ratelimit import RateLimit, TokenBuckets, client_of

FEED = "/feeds/news/turkey/rss.xml"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_its_burst_then_waits_for_tokens():
    clock = Clock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token at 2/s
    assert buckets.take("b") == 0.0  # other clients have their own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 60  # idle: the bucket refills to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_memory_is_bounded_by_evicting_the_least_recently_seen_client():
    clock = Clock()
    buckets = TokenBuckets(1.0, 1, max_clients=3, clock=clock)
    for client in ("a", "b", "c"):
        assert buckets.take(client) == 0.0
    assert buckets.take("a") > 0  # a is now the most recently seen
    for n in range(1000):
        buckets.take(f"spoofed-{n}")
        assert len(buckets) <= 3
    buckets = TokenBuckets(1.0, 1, max_clients=3, clock=clock)
    for client in ("a", "b", "c"):
        buckets.take(client)
    buckets.take("a")
    buckets.take("d")  # evicts b, the least recently seen, and keeps a's empty bucket
    assert buckets.take("a") > 0


@pytest.mark.parametrize(("environ", "trusted", "client"), [
    ({"REMOTE_ADDR": "203.0.113.9"}, (), "203.0.113.9"),
    # an untrusted peer cannot pick its identity
    ({"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, (),
     "203.0.113.9"),
    # behind a trusted proxy: the address the proxy saw, not what the client wrote before it
    ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 198.51.100.1"},
     ("10.0.0.2",), "198.51.100.1"),
    ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 10.0.0.1"},
     ("10.0.0.1", "10.0.0.2"), "198.51.100.1"),
    ({"REMOTE_ADDR": "10.0.0.2"}, ("10.0.0.2",), "10.0.0.2"),
    ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": " , "}, ("10.0.0.2",), "10.0.0.2"),
    # IPv6 clients count by their /64
    ({"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}, (), "2001:db8:1:2::/64"),
    ({"REMOTE_ADDR": "2001:db8:1:2:bbbb::7"}, (), "2001:db8:1:2::/64"),
    ({"REMOTE_ADDR": "not:an:address:::"}, (), "not:an:address:::"),
    ({}, (), ""),
])
def test_the_client_is_the_peer_or_the_address_a_trusted_proxy_saw(environ, trusted, client):
    assert client_of(environ, frozenset(trusted)) == client


def test_the_options_are_validated_and_off_by_default():
    defaults = settings_from_mapping({})
    assert defaults.rate_limit == 0 and defaults.rate_limit_burst == 20
    assert settings_from_mapping({"web": {"rate_limit": 5}}).rate_limit == 5.0
    assert settings_from_mapping({"web": {"rate_limit": 0.5}}).rate_limit == 0.5
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"web\.rate_limit: must be a finite number"):
            settings_from_mapping({"web": {"rate_limit": bad}})
    with pytest.raises(ConfigError, match=r"web\.rate_limit_burst: must be positive"):
        settings_from_mapping({"web": {"rate_limit_burst": 0}})
    with pytest.raises(ConfigError, match=r"web\.rate_limit: must be float, not bool"):
        settings_from_mapping({"web": {"rate_limit": True}})


@pytest.fixture
def rendered(settings, store, redis_cache):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    Refresher(FeedBuilder(settings, store, redis_cache)).full()
    return settings


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=5)


def test_without_configuration_nobody_is_limited(rendered, store, redis_cache,
                                                 live_server_factory):
    server = live_server_factory(rendered, store, redis_cache)
    assert isinstance(server.app.wsgi_app, FeedFastPath)  # nothing in front of it
    assert {_get(server.url + FEED).status_code for _ in range(60)} == {200}


def test_over_the_limit_a_client_gets_429_with_retry_after_and_others_do_not(
        rendered, store, redis_cache, live_server_factory):
    limited = dataclasses.replace(rendered, rate_limit=1.0, rate_limit_burst=3,
                                  trusted_proxies=("127.0.0.1",))
    server = live_server_factory(limited, store, redis_cache)
    assert isinstance(server.app.wsgi_app, RateLimit)
    first = [_get(server.url + FEED, **{"X-Forwarded-For": "198.51.100.1"}) for _ in range(3)]
    assert [r.status_code for r in first] == [200, 200, 200]
    refused = _get(server.url + FEED, **{"X-Forwarded-For": "198.51.100.1"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # up to 1 s, in whole seconds
    assert refused.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert refused.content == b"429 Too Many Requests\n"
    assert "ETag" not in refused.headers  # nothing a cache could keep as the feed
    head = requests.head(server.url + FEED, headers={"X-Forwarded-For": "198.51.100.1"},
                         timeout=5)
    assert head.status_code == 429 and head.content == b""
    # another client (as the trusted proxy reports it) is not held back
    other = _get(server.url + FEED, **{"X-Forwarded-For": "198.51.100.2"})
    assert other.status_code == 200 and other.content == first[0].content
    # tokens come back at the configured rate
    time.sleep(1.1)
    assert _get(server.url + FEED, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 200
    metrics = _get(server.url + "/metrics", **{"X-Forwarded-For": "198.51.100.3"}).text
    assert 'route="(rate limited)"' in metrics and 'status="429"' in metrics


def test_an_untrusted_client_cannot_escape_the_limit_with_x_forwarded_for(
        rendered, store, redis_cache, live_server_factory):
    limited = dataclasses.replace(rendered, rate_limit=0.5, rate_limit_burst=2)
    server = live_server_factory(limited, store, redis_cache)
    statuses = [_get(server.url + FEED, **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                for n in range(4)]
    assert statuses == [200, 200, 429, 429]
    refused = _get(server.url + "/feeds/no-such/rss.xml")  # every URL counts, not just feeds
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
