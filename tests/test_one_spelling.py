"""One spelling per document, over real HTTP with the cache in the real Redis and the store on
PostgreSQL: a path written otherwise than the service writes its URLs (extra slashes, `.`
segments, upper case, a NUL, other punctuation, more than a stored path can hold) is a short
404, decided from the path alone: no second copy of a document, no store query, no 503 when
the store is down. Percent-encoding and the query are not spellings: the server decodes the
one, and the cache key never holds the other; extra leading slashes, which the test server's
http.server merges before the app sees them, are tested on granian (test_hostile_requests.py)."""

from __future__ import annotations

import dataclasses
import http.client
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from clocks import ShiftedClock
from conftest import free_port
from feedsvc.build import FeedBuilder
from feedsvc.cache import RedisCache
from feedsvc.config import Settings
from feedsvc.ingest.document import parse_article
from feedsvc.refresh import Refresher
from feedsvc.store import Store
from feedsvc.urls import MAX_FEED_PATH, feed_target

PERSIAN = "خاورمیانه"
CANONICAL = ["/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/tag/turkey/rss.xml",
             f"/feeds/tag/{quote(PERSIAN)}/feed.json", "/feeds.opml", "/", "/mirrors.json"]
# Spellings the service never writes, each of a document that exists.
OTHER_SPELLINGS = [
    "/feeds/news/Turkey/atom.xml", "/feeds/NEWS/turkey/atom.xml", "/feeds/tag/Turkey/rss.xml",
    "/feeds/news/./turkey/atom.xml", "/feeds/news/turkey/./atom.xml",
    "/feeds/news/turkey/../turkey/atom.xml", "/feeds/tag/turkey%00/rss.xml",
    "/feeds/tag/turkey%20/rss.xml", "/feeds/tag/turkey%0A/rss.xml",
    "/feeds/tag/turkey%E2%80%8B/rss.xml",  # a zero-width space after it
    "/feeds/news%EF%BC%8Fturkey/atom.xml",  # a fullwidth solidus for the slash
    "/feeds/tag/turkey!/rss.xml", "/feeds/tag/turkey%EF%BF%BD/rss.xml",
    "/feeds/tag/" + "t" * (MAX_FEED_PATH + 1) + "/rss.xml",
]


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET `target` as it is written (http.client normalises nothing)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "news.example")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def rendered(settings: Settings, postgres_url: str, redis_cache: RedisCache
             ) -> Iterator[Settings]:
    """Articles with tags on PostgreSQL, every section feed and the tag feeds above rendered
    into Redis."""
    settings = dataclasses.replace(settings, database_url=postgres_url)
    store = Store(postgres_url)
    published = datetime.now(UTC) - timedelta(hours=2)
    store.upsert([parse_article({
        "id": f"a{n}", "url": f"/a/{n}", "section": "News/Turkey", "title": f"Title {n}",
        "published": (published + timedelta(minutes=n)).isoformat(), "tags": ["Turkey", PERSIAN],
    }, origin=settings.origin, timezone=settings.timezone) for n in range(3)])
    builder = FeedBuilder(settings, store, redis_cache)
    Refresher(builder, clock=ShiftedClock()).full()
    redis_cache.put_many({key: document.compress() for path in ("tag/turkey", f"tag/{PERSIAN}")
                          for key, document in builder.build(builder.spec(path)).items()})
    yield settings
    store.close()


def test_the_grammar_takes_the_urls_the_service_writes():
    assert feed_target("/feeds/rss.xml") == ("", "rss.xml")
    assert feed_target("/feeds/news/archive/2026-11/atom.xml") == ("news/archive/2026-11",
                                                                   "atom.xml")
    assert feed_target(f"/feeds/tag/{PERSIAN}\u200cها/feed.json") == (f"tag/{PERSIAN}\u200cها",
                                                                      "feed.json")
    assert feed_target("/feeds/tag/c-3b5d8b6c/roku.json") == ("tag/c-3b5d8b6c", "roku.json")
    for path in ("/feeds/news/rss.xml/", "/feeds//rss.xml", "/feeds/rss.txt", "/feeds/RSS.xml",
                 "/feeds/news/rss.xml;x", "/feeds/./rss.xml", "/feeds/news/\x00/rss.xml"):
        assert feed_target(path) is None, path


def test_other_spellings_are_404_without_asking_the_store(rendered, redis_cache,
                                                          live_server_factory, caplog):
    """The store down: the documents the cache holds are served, and every other spelling of
    them is a 404 (it was a 503 with Retry-After, after a store query for each, since the path
    went to the store's catalog and labels to be found wanting)."""
    unreachable = Store(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    server = live_server_factory(rendered, unreachable, redis_cache)
    try:
        for target in CANONICAL:
            assert raw_get(server.port, target)[0] == 200, target
        with caplog.at_level(logging.ERROR):
            for target in OTHER_SPELLINGS:
                status, body = raw_get(server.port, target)
                assert (status, body) == (404, b"404 Not Found\n"), target
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        unreachable.close()


def test_a_nul_in_a_tag_path_is_404_not_a_store_failure(rendered, redis_cache,
                                                        live_server_factory, caplog):
    """PostgreSQL refuses a NUL in text: `/feeds/tag/turkey%00/rss.xml` was a 503 and an
    ERROR line saying the store was unavailable."""
    store = Store(rendered.database_url)
    server = live_server_factory(rendered, store, redis_cache)
    try:
        with caplog.at_level(logging.ERROR):
            assert raw_get(server.port, "/feeds/tag/turkey%00/rss.xml")[0] == 404
            assert raw_get(server.port, "/feeds/tag/new%00/rss.xml")[0] == 404
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        store.close()
