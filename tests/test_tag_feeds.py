"""Tag and author feeds end to end, over real HTTP with the cache in the real Redis and the store
on SQLite and PostgreSQL: rendered on first request on every address, valid in every format,
listed in the OPML and the index page by URLs that lead back to them (Persian and Arabic
slugs included), kept fresh by the refresh only while polled, and dropped when not."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import feedparser
import pytest
import requests
from lxml import etree

from clocks import ShiftedClock
from feedcheck import assert_uris, assert_valid
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, RedisCache
from feedsvc.config import Settings
from feedsvc.ingest.document import parse_article
from feedsvc.model import Article, label_feed
from feedsvc.refresh import Refresher
from feedsvc.render.items import item_id
from feedsvc.store import Store
from feedsvc.urls import FEED_CONTENT_TYPES
from feedsvc.web.polls import PollMarks

CANONICAL, MIRROR = "news.example", "news-mirror.example"
PERSIAN, ARABIC = "خاورمیانه", "الشرق الأوسط"


def article(settings: Settings, article_id: str, hour: int, **fields: object) -> Article:
    return parse_article({
        "id": article_id, "url": f"/a/{article_id}", "section": "News/Turkey",
        "title": fields.pop("title", f"Title {article_id}"),
        "published": datetime(2026, 11, 1, hour, tzinfo=UTC).isoformat(), **fields,
    }, origin=settings.origin, timezone=settings.timezone)


@pytest.fixture
def site(settings: Settings, database_url: str, redis_cache: RedisCache,
         live_server_factory) -> Iterator[tuple[Settings, Store, Refresher, str]]:
    """Articles with tags and authors in a store on `database_url`, the section feeds
    rendered by a full refresh, and a server over them."""
    settings = dataclasses.replace(settings, database_url=database_url)
    store = Store(database_url)
    store.upsert([
        article(settings, "a1", 1, tags=["Turkey", PERSIAN, "C++"], authors=["Sara Ahmadi"]),
        article(settings, "a2", 2, tags=["turkey", ARABIC, "C"], authors=["Murat Kaya"]),
        article(settings, "a3", 3, tags=["Oil"], authors=["Sara Ahmadi"]),
    ])
    refresher = Refresher(FeedBuilder(settings, store, redis_cache), clock=ShiftedClock())
    refresher.full()
    server = live_server_factory(settings, store, redis_cache)
    yield settings, store, refresher, server.url
    store.close()


def get(url: str, path: str, host: str = CANONICAL) -> requests.Response:
    return requests.get(url + path, headers={"Host": host}, timeout=10)


def ids(body: bytes) -> list[str]:
    return [e.id for e in feedparser.parse(body).entries]


def test_a_tag_or_author_feed_is_rendered_on_first_request_valid_on_every_address(
        site, redis_cache: RedisCache) -> None:
    _, _, _, url = site
    feeds = {label_feed("tag", "Turkey"): (["a2", "a1"], "Turkey"),
             label_feed("tag", PERSIAN): (["a1"], PERSIAN),
             label_feed("tag", "C++"): (["a1"], "C++"),
             label_feed("tag", "C"): (["a2"], "C"),
             label_feed("author", "Sara Ahmadi"): (["a3", "a1"], "Sara Ahmadi")}
    for path, (expected, name) in feeds.items():
        assert redis_cache.get(FeedKey(path, "rss.xml", f"https://{CANONICAL}")) is None
        for host in (CANONICAL, MIRROR):
            for filename in FEED_CONTENT_TYPES:
                response = get(url, f"/feeds/{path}/{filename}", host)
                assert response.status_code == 200, (path, filename, host)
                assert_valid(filename, response.content, f"{host}/feeds/{path}/{filename}")
            rss = get(url, f"/feeds/{path}/rss.xml", host).content
            assert ids(rss) == [item_id(i) for i in expected]
            assert feedparser.parse(rss).feed.title.endswith(name)
            atom = feedparser.parse(get(url, f"/feeds/{path}/atom.xml", host).content)
            assert {link.href for link in atom.feed.links if link.rel == "self"} == {
                f"https://{host}/feeds/{quote(path)}/atom.xml"}
        # rendered once, on every address and format
        assert redis_cache.get(FeedKey(path, "roku.json", f"https://{MIRROR}")) is not None


@pytest.mark.parametrize("path", ["tag/nothing", "author/nobody", "tag/turkey/more",
                                  "tag/" + "x" * 300])
def test_an_unknown_tag_or_author_is_404(site, path: str, redis_cache: RedisCache) -> None:
    _, _, _, url = site
    response = get(url, f"/feeds/{path}/rss.xml")
    assert response.status_code == 404 and len(response.content) < 100
    assert redis_cache.polled_since([path], 0) == set()


def test_opml_and_index_list_tag_feeds_whose_urls_lead_to_them(site) -> None:
    _, _, _, url = site
    for host in (CANONICAL, MIRROR):
        opml = etree.fromstring(get(url, "/feeds.opml", host).content)
        assert_uris(opml, host)
        listed = {o.get("title"): o.get("xmlUrl") for o in opml.iter("outline")
                  if "/feeds/tag/" in o.get("xmlUrl") and o.get("xmlUrl").endswith("/rss.xml")}
        for name in (PERSIAN, ARABIC, "C++", "Turkey"):
            feed_url = next(u for title, u in listed.items() if title.endswith(name))
            assert feed_url.startswith(f"https://{host}/feeds/tag/")
            path = feed_url.removeprefix(f"https://{host}")
            response = get(url, path, host)  # requests percent-encodes the UTF-8 path
            assert response.status_code == 200, path
            assert feedparser.parse(response.content).feed.title.endswith(name)
        index = get(url, "/", host).text
        for name in (PERSIAN, "Sara Ahmadi"):
            head = index.split("</head>")[0]
            assert f'title="Example News: {name} (RSS)"' in head
        assert f"https://{host}/feeds/tag/{quote(label_feed('tag', PERSIAN)[4:])}/rss.xml" in index


def test_listed_labels_bounds_the_site_documents(site, redis_cache: RedisCache) -> None:
    settings, store, _, _ = site
    few = FeedBuilder(dataclasses.replace(settings, listed_labels=1), store, redis_cache)
    opml = etree.fromstring(few.build_site()[FeedKey("", "feeds.opml", settings.origin)].body)
    urls = {o.get("xmlUrl").split("/feeds/")[1].rsplit("/", 1)[0] for o in opml.iter("outline")}
    assert {u for u in urls if u.startswith(("tag/", "author/"))} == {
        "tag/turkey", "author/sara-ahmadi"}  # the most used of each kind


def test_a_change_re_renders_its_polled_tag_feeds_and_drops_the_unpolled(
        site, redis_cache: RedisCache) -> None:
    settings, store, refresher, url = site
    polled, unpolled = label_feed("tag", "Turkey"), label_feed("tag", PERSIAN)
    author = label_feed("author", "Sara Ahmadi")
    for path in (polled, unpolled, author):
        assert get(url, f"/feeds/{path}/atom.xml").status_code == 200
    assert redis_cache.polled_since([polled, unpolled, author], 0) == {polled, unpolled, author}
    # the Persian tag was last polled longer ago than feeds.tag_feed_idle_days
    redis_cache.mark_polled(unpolled, time.time() - settings.tag_feed_idle_days * 86400 - 60)
    untouched = redis_cache.get(FeedKey(author, "rss.xml", settings.origin))
    store.upsert([article(settings, "a1", 1, title="Corrected",
                          tags=["Turkey", PERSIAN, "C++"], authors=["Sara Ahmadi"])])
    report = refresher.incremental()
    assert report.feeds == 3 + 2  # news/turkey, news, the site; the two polled label feeds
    for origin in settings.addresses:
        for filename in FEED_CONTENT_TYPES:
            entry = redis_cache.get(FeedKey(polled, filename, origin))
            # Roku lists videos only: these articles have none
            assert entry is not None and (b"Corrected" in entry.body) != (filename == "roku.json")
            assert redis_cache.get(FeedKey(unpolled, filename, origin)) is None
    assert f"{settings.origin}/feeds/{polled}/rss.xml" in report.changed_urls
    assert redis_cache.get(FeedKey(author, "rss.xml", settings.origin)) != untouched
    # C++ was never requested: neither rendered nor polled
    assert redis_cache.get(FeedKey(label_feed("tag", "C++"), "rss.xml", settings.origin)) is None
    # the dropped feed is rendered afresh on its next request (this worker marked it polled
    # less than MARK_EVERY ago: it does not write the mark again yet)
    again = get(url, f"/feeds/{unpolled}/rss.xml")
    assert again.status_code == 200 and b"Corrected" in again.content
    assert redis_cache.polled_since([unpolled], time.time() - 60) == set()


def test_a_worker_marks_a_feed_at_most_once_per_interval(redis_cache: RedisCache) -> None:
    marks = PollMarks(redis_cache, every=0.5)
    marks.served("news/turkey")  # a section: never marked
    marks.served("tag/oil")
    first = redis_cache.polled_since(["tag/oil", "news/turkey"], 0)
    redis_cache.forget_polls_before(time.time() + 1)
    marks.served("tag/oil")  # within the interval: no write
    assert (first, redis_cache.polled_since(["tag/oil"], 0)) == ({"tag/oil"}, set())
    time.sleep(0.6)
    marks.served("tag/oil")
    assert redis_cache.polled_since(["tag/oil"], 0) == {"tag/oil"}


def test_an_article_leaving_a_tag_leaves_its_polled_feed(site, redis_cache: RedisCache) -> None:
    """... and the last one to leave ends the feed: a tag no article is in is no feed
    (tests/test_refresh_containment.py)."""
    settings, store, refresher, url = site
    oil = label_feed("tag", "Oil")
    assert ids(get(url, f"/feeds/{oil}/rss.xml").content) == [item_id("a3")]
    store.upsert([article(settings, "a3", 3, tags=["Gas"], authors=["Sara Ahmadi"])])
    refresher.incremental()
    assert get(url, f"/feeds/{oil}/rss.xml").status_code == 404
    store.upsert([article(settings, "a2", 2, status="deleted", tags=["turkey"])])
    turkey = label_feed("tag", "Turkey")
    refresher.incremental()
    assert ids(get(url, f"/feeds/{turkey}/rss.xml").content) == [item_id("a1")]
    store.upsert([article(settings, "a1", 1, status="deleted", tags=["Turkey"])])
    refresher.incremental()
    assert get(url, f"/feeds/{turkey}/rss.xml").status_code == 404


def test_a_full_refresh_renders_no_tag_feed_and_forgets_old_marks(
        site, redis_cache: RedisCache) -> None:
    settings, _, refresher, _ = site
    redis_cache.mark_polled("tag/old", time.time() - settings.tag_feed_idle_days * 86400 - 60)
    redis_cache.mark_polled("tag/recent", time.time())
    report = refresher.full()
    assert report.feeds == len(refresher.builder.catalog())  # sections; no tag or author feed
    assert not any(path.startswith(("tag/", "author/")) for path in refresher.builder.catalog())
    assert redis_cache.get(FeedKey("tag/turkey", "rss.xml", settings.origin)) is None
    assert redis_cache.polled_since(["tag/old", "tag/recent"], 0) == {"tag/recent"}


def test_a_bulk_change_refreshed_in_full_drops_the_polled_tag_feeds(
        site, redis_cache: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, store, refresher, url = site
    turkey = label_feed("tag", "Turkey")
    assert get(url, f"/feeds/{turkey}/rss.xml").status_code == 200
    monkeypatch.setattr("feedsvc.refresh.refresher.MAX_INCREMENTAL_CHANGES", 1)
    store.upsert([article(settings, "a1", 1, title="Corrected", tags=["Turkey"]),
                  article(settings, "a4", 4, tags=["Water"])])
    assert refresher.incremental().kind == "full"
    for origin in settings.addresses:
        assert redis_cache.get(FeedKey(turkey, "rss.xml", origin)) is None
    assert b"Corrected" in get(url, f"/feeds/{turkey}/rss.xml").content


def test_an_embargoed_article_enters_its_polled_tag_feed_when_due(
        site, redis_cache: RedisCache) -> None:
    settings, store, refresher, url = site
    oil = label_feed("tag", "Oil")
    assert ids(get(url, f"/feeds/{oil}/rss.xml").content) == [item_id("a3")]
    due = refresher.clock() + timedelta(seconds=2)
    store.upsert([parse_article({"id": "due", "url": "/a/due", "section": "World",
                                 "title": "Due", "published": due.isoformat(),
                                 "tags": ["Oil"]},
                                origin=settings.origin, timezone=settings.timezone)])
    refresher.incremental()
    assert ids(get(url, f"/feeds/{oil}/rss.xml").content) == [item_id("a3")]
    refresher.clock.advance(2.2)
    # the change itself was rendered already: only its publication time brings it in now
    refresher.incremental()
    assert ids(get(url, f"/feeds/{oil}/rss.xml").content) == [item_id("due"), item_id("a3")]
