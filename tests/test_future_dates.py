"""A far-future `updated` (a CMS bug, or a hostile import) must not freeze conditional GETs:
no date in a feed and no Last-Modified is later than the render (RFC 9110 §8.8.2.1: never
later than the response's Date). The import keeps such an article with its `updated` brought
back to its `published` time, with a log line naming it; an item stored with a future date
anyway (before this rule, or by a clock ahead) is rendered as of its `published` time."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
import requests
from lxml import etree

from feedcheck import valid_json, valid_xml
from feedsvc.build import FeedBuilder
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from topology import eventually

FAR_FUTURE = "9998-12-31T23:59:59Z"  # the last second a date may be
FEEDS = ("/feeds/news/turkey/", "/feeds/")
HOSTS = ("news.example", "news-mirror.example")


def _jsonl(path: Path, *docs: dict) -> Path:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
    return path


def _article(article_id: str, published: str, **fields) -> dict:
    return {"id": article_id, "url": f"/news/turkey/{article_id}", "section": "News/Turkey",
            "title": f"Title of {article_id}", "published": published, **fields}


def _feed_dates(base: str, host: str) -> dict[str, datetime]:
    """Each format's feed-level date and each document's Last-Modified, fetched over HTTP."""
    dates = {}
    for filename in ("rss.xml", "atom.xml", "feed.json", "roku.json"):
        response = requests.get(base + filename, headers={"Host": host}, timeout=10)
        assert response.status_code == 200, (base, filename)
        last_modified = parsedate_to_datetime(response.headers["Last-Modified"])
        assert last_modified <= parsedate_to_datetime(response.headers["Date"])
        dates[f"{filename} Last-Modified"] = last_modified
        if filename == "rss.xml":
            channel = valid_xml(filename, response.content).find("channel")
            dates["lastBuildDate"] = parsedate_to_datetime(channel.findtext("lastBuildDate"))
        elif filename == "atom.xml":
            root = valid_xml(filename, response.content)
            text = root.findtext("{http://www.w3.org/2005/Atom}updated")
            dates["atom updated"] = datetime.fromisoformat(text)
        elif filename == "roku.json":
            doc = valid_json(filename, response.content)
            dates["roku lastUpdated"] = datetime.fromisoformat(doc["lastUpdated"])
        else:
            for item in valid_json(filename, response.content)["items"]:
                dates[f"date_modified of {item['url']}"] = datetime.fromisoformat(
                    item["date_modified"])
    return dates


def test_a_far_future_updated_neither_dates_the_feeds_ahead_nor_freezes_if_modified_since(
        tmp_path, settings, store, redis_cache, live_server_factory):
    importer = Importer(settings, store, progress=False)
    importer.import_paths([_jsonl(tmp_path / "future.jsonl",
                                  _article("future", "2026-11-01T10:00:00Z"))])
    # stored with its far-future date as it was before the import's rule
    store.upsert([dataclasses.replace(store.get("future"),
                                      updated=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))])
    refresher = Refresher(FeedBuilder(settings, store, redis_cache))
    refresher.full()
    server = live_server_factory(settings, store, redis_cache)
    rendered = datetime.now(UTC)
    for feed in FEEDS:
        for host in HOSTS:
            dates = _feed_dates(server.url + feed, host)
            late = {what: when for what, when in dates.items() if when > rendered}
            assert not late, (feed, host, late)
            assert dates["date_modified of https://news.example/news/turkey/future".replace(
                "news.example", host)] == datetime(2026, 11, 1, 10, tzinfo=UTC)

    # A poller that sends only If-Modified-Since (many do) sees the next import.
    url = f"{server.url}/feeds/news/turkey/rss.xml"
    last_modified = requests.get(url, timeout=10).headers["Last-Modified"]
    assert requests.get(url, headers={"If-Modified-Since": last_modified},
                        timeout=10).status_code == 304
    importer.import_paths([_jsonl(tmp_path / "next.jsonl",
                                  _article("next", "2026-11-02T10:00:00Z"))])
    refresher.incremental()
    # The web process drops its copy of the feed when Redis's notice of the change arrives,
    # milliseconds after the publish (feedsvc.cache.near): asked at once, it may still hold it.
    response = eventually(lambda: _modified(url, last_modified), 5, "the next import served")
    assert response.status_code == 200
    assert "Title of next" in [e.title for e in feedparser.parse(response.content).entries]


def _modified(url: str, since: str) -> requests.Response | None:
    """The response to a GET with `If-Modified-Since: since`, unless it is a 304."""
    response = requests.get(url, headers={"If-Modified-Since": since}, timeout=10)
    return None if response.status_code == 304 else response


@pytest.mark.parametrize("published", [
    "2026-11-01T10:00:00Z",
    "2999-01-01T00:00:00Z",  # embargoed: its update comes no later than its publication
])
def test_the_import_keeps_a_far_future_updated_article_and_names_the_change(
        tmp_path, settings, store, caplog, published):
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    path = _jsonl(tmp_path / "future.jsonl", _article("past", "2026-11-01T10:00:00Z"),
                  _article("future", published, updated=FAR_FUTURE),
                  _article("embargoed", "2999-01-01T00:00:00Z", updated=soon))
    with caplog.at_level(logging.WARNING, logger="feedsvc.ingest"):
        report = Importer(settings, store, progress=False).import_paths([path])
    assert (report.accepted, report.rejected) == (3, 0)
    article = store.get("future")
    assert article.updated == article.published == datetime.fromisoformat(published)
    assert store.get("embargoed").updated == datetime.fromisoformat(soon)  # not ahead of it
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("feedsvc.ingest")]
    assert line.startswith(f"{path}:2: updated: ")
    assert FAR_FUTURE in line and article.published.isoformat() in line


def test_a_date_beyond_the_bounds_is_refused_by_its_line_and_the_refresh_goes_on(
        tmp_path, settings, store, redis_cache, live_server_factory):
    """`published: 9999-12-31T23:59:59Z` was taken, and every refresh after it died on its
    archive month's end (year 10000): nothing more was published, the embargo timer never
    armed."""
    refresher = Refresher(FeedBuilder(settings, store, redis_cache))
    refresher.full()
    server = live_server_factory(settings, store, redis_cache)
    path = _jsonl(tmp_path / "far.jsonl", _article("before", "2026-11-01T10:00:00Z"),
                  _article("far", "9999-12-31T23:59:59Z"),
                  _article("early", "2026-11-01T10:00:00Z", updated="1899-12-31T23:59:59Z"),
                  _article("after", "2026-11-02T10:00:00Z"))
    errors = io.StringIO()
    report = Importer(settings, store, errors=errors, progress=False).import_paths([path])
    bounds = "is out of range: dates from 1900 to 9998 (UTC) are accepted"
    assert errors.getvalue().splitlines() == [
        f"{path}:2: published: '9999-12-31T23:59:59Z' {bounds}",
        f"{path}:3: updated: '1899-12-31T23:59:59Z' {bounds}",
    ]
    assert (report.accepted, report.rejected) == (2, 2)
    watermark = redis_cache.get_state("watermark")
    refresher.incremental()
    assert redis_cache.get_state("watermark") != watermark
    for host in HOSTS:
        response = requests.get(f"{server.url}/feeds/news/turkey/rss.xml",
                                headers={"Host": host}, timeout=10)
        valid_xml("rss.xml", response.content, host)
        titles = [e.title for e in feedparser.parse(response.content).entries]
        assert titles == ["Title of after", "Title of before"], host


def test_unchanged_data_renders_the_same_bytes_later(settings, store, tmp_path):
    """The feed's date follows the clock only when an item is dated ahead of it."""
    Importer(settings, store, progress=False).import_paths([_jsonl(
        tmp_path / "a.jsonl", _article("a", "2026-11-01T10:00:00Z"))])
    renderer = FeedBuilder(settings, store, None)
    spec = renderer.catalog()["news/turkey"]
    now = datetime.now(UTC)
    first = renderer.build(spec, now)
    second = renderer.build(spec, now + timedelta(days=1))
    assert {k: v.body for k, v in first.items()} == {k: v.body for k, v in second.items()}
    assert etree.fromstring(next(v.body for k, v in first.items()
                                 if k.filename == "rss.xml")).findtext("channel/lastBuildDate")
