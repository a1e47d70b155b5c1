"""RFC 5005 archived feeds over real HTTP, Redis and a real store (SQLite and PostgreSQL): every
archive document passes the feed checks on the canonical address and a mirror; a client that
follows `prev-archive` from the current feed collects every published article of the feed
exactly once; ended months are immutable; a change re-renders only the months it alters."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import feedparser
import pytest
import requests
from lxml import etree
from sqlalchemy import inspect

from feedcheck import valid_xml
from feedsvc.archives import Month, archive_path, completed, parse_archive_path
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey
from feedsvc.ingest.document import parse_article
from feedsvc.model import section_slug
from feedsvc.refresh import Refresher
from feedsvc.render.items import item_id
from feedsvc.store import Store

HOSTS = {"news.example": "https://news.example",
         "news-mirror.example": "https://news-mirror.example"}
PERSIAN = "خاورمیانه"  # a section whose slug is not ASCII: its URLs are percent-encoded
FEEDS = ("", "news", "news/turkey", "world", PERSIAN)
HISTORY = "{http://purl.org/syndication/history/1.0}archive"
IMMUTABLE = "public, max-age=31536000, immutable"


def _back(month: Month, count: int) -> Month:
    index = month.year * 12 + month.month - 1 - count
    return Month(index // 12, index % 12 + 1)


class Site:
    """A store with articles in this month and three earlier ones (the third month back has
    none), one deleted, one embargoed; a refreshed cache; a server."""

    def __init__(self, settings, store: Store, cache, server):
        self.settings, self.store, self.cache, self.server = settings, store, cache, server
        self.now = datetime.now(UTC)
        self.months = [Month.of(self.now), *(_back(Month.of(self.now), k) for k in (1, 2, 4))]
        self.sections: dict[str, str] = {}
        self.month_of: dict[str, Month] = {}
        plan = {"News/Turkey": (3, 4, 3, 2), "World": (2, 3, 1, 0), PERSIAN: (1, 1, 0, 1)}
        articles = []
        for section, counts in plan.items():
            for month, count in zip(self.months, counts, strict=True):
                for n in range(count):
                    articles.append(self.article(f"{section_slug([section])}-{month}-{n}",
                                                 section, month, n))
        articles.append(self.article("deleted", "News/Turkey", self.months[1], 9,
                                     status="deleted"))
        articles.append(self.article("embargoed", "World", self.months[0], 0,
                                     published=(self.now + timedelta(days=40)).isoformat()))
        store.upsert(articles)
        self.refresher = Refresher(FeedBuilder(settings, store, cache))
        self.refresher.full()

    def article(self, article_id: str, section: str, month: Month, n: int, **fields):
        if month == self.months[0]:  # this month: between its start and now
            when = month.start + (self.now - month.start) * (n + 1) / 12
        else:
            when = month.start + timedelta(days=n + 1, hours=n)
        doc = {"id": article_id, "url": f"/{article_id}", "section": section,
               "title": f"Story {article_id}", "published": when.isoformat(),
               "body": f"<p>Body of {article_id}.</p>"} | fields
        article = parse_article(doc, origin=self.settings.origin, timezone=self.settings.timezone)
        if article.status == "published" and article.published <= self.now:
            self.sections[article_id] = article.section_path
            self.month_of[article_id] = Month.of(article.published)
        return article

    def expected(self, feed: str) -> set[str]:
        """The item ids of every published article of `feed`."""
        return {item_id(a) for a, path in self.sections.items()
                if not feed or path == feed or path.startswith(feed + "/")}

    def get(self, path: str, host: str = "news.example", **headers) -> requests.Response:
        return requests.get(self.server.url + path, headers={"Host": host, **headers},
                            timeout=30)


@pytest.fixture
def site(settings, database_url, redis_cache, live_server_factory):
    settings = dataclasses.replace(settings, database_url=database_url, items_per_feed=5)
    store = Store(settings.database_url)
    yield Site(settings, store, redis_cache,
               live_server_factory(settings, store, redis_cache))
    store.close()


def _link(root: etree._Element, rel: str) -> str | None:
    """The feed-level link `rel` of an RSS (atom:link) or Atom document."""
    found = root.xpath("/*/*[local-name()='link'][@rel=$rel]/@href"
                       " | /rss/channel/*[local-name()='link'][@rel=$rel]/@href", rel=rel)
    assert len(found) <= 1, (rel, found)
    return found[0] if found else None


def _ids(body: bytes) -> list[str]:
    return [entry.id for entry in feedparser.parse(body).entries]


def _follow(site: Site, host: str, url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == HOSTS[host], url  # on the reader's address
    return parts.path


@pytest.mark.parametrize("filename", ["rss.xml", "atom.xml"])
def test_following_prev_archive_collects_every_article_exactly_once(site, filename):
    for host in HOSTS:
        for feed in FEEDS:
            current_path = f"/feeds/{quote(feed)}/{filename}" if feed else f"/feeds/{filename}"
            current = site.get(current_path, host)
            root = valid_xml(filename, current.content, (host, current_path))
            assert root.find(f".//{HISTORY}") is None  # the current feed is no archive
            collected: list[str] = []
            seen_months = []
            url = _link(root, "prev-archive")
            while url is not None:
                path = _follow(site, host, url)
                response = site.get(path, host)
                assert response.status_code == 200, path
                archive = valid_xml(filename, response.content, (host, path))
                assert archive.find(f".//{HISTORY}") is not None, path
                assert _follow(site, host, _link(archive, "current")) == current_path
                assert _follow(site, host, _link(archive, "self")) == path
                collected += _ids(response.content)
                seen_months.append(parse_archive_path(path.split("/", 2)[2].rsplit("/", 1)[0]))
                url = _link(archive, "prev-archive")
            assert len(collected) == len(set(collected)), (host, feed, filename)
            assert set(collected) == site.expected(feed), (host, feed, filename)
            assert set(_ids(current.content)) <= site.expected(feed)
            months = [m for _, m in seen_months]
            assert months == sorted(months, reverse=True) and len(set(months)) == len(months)


def test_archives_link_their_neighbouring_months_both_ways(site):
    paths = [archive_path("news/turkey", m) for m in site.months]  # newest first
    for newer, older in itertools.pairwise(paths):
        root = etree.fromstring(site.get(f"/feeds/{older}/atom.xml").content)
        assert urlsplit(_link(root, "next-archive")).path == f"/feeds/{newer}/atom.xml"
    newest = etree.fromstring(site.get(f"/feeds/{paths[0]}/atom.xml").content)
    oldest = etree.fromstring(site.get(f"/feeds/{paths[-1]}/atom.xml").content)
    assert _link(newest, "next-archive") is None and _link(oldest, "prev-archive") is None


def test_ended_months_are_immutable_and_the_open_one_is_not(site):
    for host in HOSTS:
        for filename in ("rss.xml", "atom.xml"):
            for month in site.months:
                path = f"/feeds/{archive_path('news', month)}/{filename}"
                for _ in range(2):  # the miss, then the hit (answered beneath Flask)
                    response = site.get(path, host)
                    assert response.status_code == 200
                    control = response.headers["Cache-Control"]
                    if month == site.months[0]:
                        assert "immutable" not in control and "max-age=60" in control, control
                    else:
                        assert control == IMMUTABLE, (path, control)
            assert "immutable" not in site.get(f"/feeds/news/{filename}",
                                               host).headers["Cache-Control"]


def _etags(site: Site, feed: str) -> dict[Month, str]:
    return {m: site.get(f"/feeds/{archive_path(feed, m)}/atom.xml").headers.get("ETag")
            for m in site.months}


def test_an_edit_to_an_old_article_changes_only_its_months_etag(site):
    before = {feed: _etags(site, feed) for feed in FEEDS}
    edited = f"news-turkey-{site.months[2]}-1"
    site.store.upsert([site.article(edited, "News/Turkey", site.months[2], 1,
                                    title="Corrected headline")])
    site.refresher.incremental()
    edited_feeds = ("", "news", "news/turkey")  # the edited article's section and its ancestors
    for feed in FEEDS:  # only the edited month's documents left the cache: nothing else renders
        for month in site.months:
            for host, origin in HOSTS.items():
                cached = site.cache.get(FeedKey(archive_path(feed, month), "rss.xml", origin))
                alters = feed in edited_feeds and month == site.months[2]
                assert (cached is None) == (alters or before[feed][month] is None), (
                    feed, month, host)
    after = {feed: _etags(site, feed) for feed in FEEDS}
    for feed in FEEDS:
        for month in site.months:
            changed = before[feed][month] != after[feed][month]
            assert changed == (feed in edited_feeds and month == site.months[2]), (feed, month)
    body = site.get(f"/feeds/{archive_path('news/turkey', site.months[2])}/atom.xml").content
    assert b"Corrected headline" in body


def test_moves_deletions_and_redating_leave_and_enter_the_right_months(site):
    old = site.months[1]
    for feed in FEEDS:  # every month cached before the changes
        _etags(site, feed)
    moved, deleted, redated = (f"world-{old}-0", f"news-turkey-{old}-0", f"world-{old}-1")
    site.store.upsert([
        site.article(moved, "News/Turkey", old, 0),
        site.article(deleted, "News/Turkey", old, 0, status="deleted"),
        site.article(redated, "World", site.months[3], 5),
    ])
    site.sections.pop(deleted)
    site.refresher.incremental()

    def ids(feed: str, month: Month) -> set[str]:
        response = site.get(f"/feeds/{archive_path(feed, month)}/rss.xml")
        return set(_ids(response.content)) if response.status_code == 200 else set()

    assert item_id(moved) in ids("news/turkey", old) and item_id(moved) not in ids("world", old)
    assert item_id(deleted) not in ids("news/turkey", old) | ids("", old)
    assert item_id(redated) not in ids("world", old)
    assert item_id(redated) in ids("world", site.months[3]) and item_id(redated) in ids(
        "", site.months[3])
    # World had no article in the fourth month back: its archive appears, linked both ways.
    newer = etree.fromstring(site.get(f"/feeds/{archive_path('world', site.months[2])}/"
                                      "atom.xml").content)
    assert urlsplit(_link(newer, "prev-archive")).path == (
        f"/feeds/{archive_path('world', site.months[3])}/atom.xml")


def test_an_article_stored_in_december_9999_stops_no_refresh(site):
    """Stored before dates were bounded (feedsvc.ingest.document refuses it now): December
    9999 has no next month a datetime can hold, and every incremental refresh died computing
    its end, also once the article was deleted, so nothing more was published."""
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    far = dataclasses.replace(site.article("far", "World", site.months[0], 0), published=last,
                              updated=last)
    old = site.months[1]

    def archived(article_id: str) -> bool:
        response = site.get(f"/feeds/{archive_path('world', old)}/rss.xml")
        return item_id(article_id) in _ids(response.content)

    for n, change in enumerate((far, dataclasses.replace(far, status="deleted")), start=1):
        assert not archived(f"after-far-{n}")  # cached before the change
        site.store.upsert([change, site.article(f"after-far-{n}", "World", old, 20 + n)])
        watermark = site.cache.get_state("watermark")
        site.refresher.incremental()
        assert site.cache.get_state("watermark") != watermark
        assert archived(f"after-far-{n}")
        assert not {item_id("far")} & set(_ids(site.get("/feeds/world/rss.xml").content))


def test_unknown_months_and_bad_paths_are_404(site):
    empty = _back(site.months[0], 3)
    future = Month(site.months[0].year + 1, site.months[0].month)
    for path in (f"news/archive/{empty}", f"news/archive/{future}", "news/archive/2026-13",
                 "news/archive/2026-1", "news/archive/26-11", "news/archive/abcd",
                 f"nowhere/archive/{site.months[1]}", f"world/archive/{site.months[3]}"):
        for filename in ("rss.xml", "atom.xml"):
            response = site.get(f"/feeds/{path}/{filename}")
            assert response.status_code == 404, (path, filename)
            assert len(response.content) < 200
    for filename in ("feed.json", "roku.json"):
        assert site.get(f"/feeds/news/archive/{site.months[1]}/{filename}").status_code == 404


def _digits(month: Month, zero: str) -> str:
    """`month` as YYYY-MM written in the decimal digits that start at `zero`."""
    return "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in str(month))


@pytest.mark.parametrize("zero", ["\u0660", "\uff10", "\u06f0", "\u0966"],
                         ids=["arabic-indic", "fullwidth", "persian", "devanagari"])
def test_a_month_in_other_digits_is_404_not_a_second_copy(site, zero):
    """One spelling per document: `٢٠٢٦-١١` named the same month as `2026-11` (each a render
    and a cache entry of its own)."""
    month = site.months[1]
    assert site.get(f"/feeds/news/archive/{month}/rss.xml").status_code == 200
    for feed in ("news/", ""):
        response = site.get(quote(f"/feeds/{feed}archive/{_digits(month, zero)}/rss.xml"))
        assert response.status_code == 404 and len(response.content) < 200
    assert parse_archive_path(f"news/archive/{_digits(month, zero)}") is None


def test_a_section_named_archive_is_renamed_so_no_archive_path_is_a_section():
    assert section_slug(["Archive"]) == "archive_"
    assert section_slug(["News", "Archive", "2026-11"]) == "news/archive_/2026-11"
    assert parse_archive_path(section_slug(["News", "Archive", "2026-11"])) is None
    assert parse_archive_path("news/archive/2026-11") == ("news", Month(2026, 11))
    assert parse_archive_path("archive/2026-11") == ("", Month(2026, 11))
    assert completed("archive/2026-10", datetime(2026, 11, 1, tzinfo=UTC))
    assert not completed("archive/2026-11", datetime(2026, 11, 30, 23, 59, tzinfo=UTC))


def test_a_store_made_before_archives_gets_the_column_they_need(database_url):
    """`articles.previous_published` is added to an older store's table when it opens."""
    store = Store(database_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE articles DROP COLUMN previous_published")
    store.close()
    store = Store(database_url)
    try:
        columns = {c["name"] for c in inspect(store.engine).get_columns("articles")}
        assert "previous_published" in columns
        doc = {"id": "a", "url": "/a", "section": "World", "title": "A",
               "published": "2026-10-01T10:00:00Z"}
        store.upsert([parse_article(doc, origin="https://news.example", timezone=UTC)])
        store.upsert([parse_article(doc | {"published": "2026-09-01T10:00:00Z"},
                                    origin="https://news.example", timezone=UTC)])
        [change] = store.changed_since(datetime(2000, 1, 1, tzinfo=UTC))
        assert change.previous_published == datetime(2026, 10, 1, 10, tzinfo=UTC)
    finally:
        store.close()
