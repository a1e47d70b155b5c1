"""Tags, authors, section names and ids under the one character rule (feedsvc/characters.py),
over the real path: `Importer` (what `feedsvc import` runs) or the ingest API over HTTP, a
refresh into the real Redis, the composed web app over real HTTP, the store on SQLite and
PostgreSQL.

A label is a name shown in feed titles, the OPML and the index page, and a key (its feed's
slug, the store's label and section rows): a character no feed can carry stored in one failed
every refresh and every document listing it. Such characters are removed at ingest with a
note, as render removes them from titles; an id is an identity, so it is refused instead, and
a URL whose id is not UTF-8 is refused rather than read with U+FFFD in place of its bytes."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
import redis
import requests
from lxml import etree

from apispec import API
from clocks import ShiftedClock
from conftest import REDIS_URL, LiveServer
from feedcheck import assert_valid
from feedsvc.build import FeedBuilder
from feedsvc.cache import RedisCache
from feedsvc.config import ApiToken, Settings
from feedsvc.ingest.importer import Importer, ImportReport
from feedsvc.ingest.tokens import hash_token
from feedsvc.model import Article, label_feed
from feedsvc.refresh import Refresher
from feedsvc.store import Store
from feedsvc.urls import FEED_CONTENT_TYPES
from feedsvc.wsgi import create_app

TOKEN = "cms-secret-0123456789abcdefghijklmnopqrstuvwxyz"
HOSTS = ("news.example", "news-mirror.example")
# Labels with noncharacters (U+FFFE, U+FFFF, U+FDD0), U+FFFD and C1 controls (U+0085, U+009F),
# and the feed of each with the name every document must show.
TAGS = ["Bad\ufffe tag\uffff", "Re\ufffdplaced"]
AUTHORS = ["Ann\x9f Lee\ufdd0"]
SECTION = ["News", "Odd\x85\uffff desk"]
FEEDS = {"tag/bad-tag": "Bad tag", "tag/replaced": "Replaced", "author/ann-lee": "Ann Lee",
         "news/odd-desk": "Odd desk"}


@dataclasses.dataclass
class Site:
    settings: Settings
    store: Store
    refresher: Refresher
    server: LiveServer
    api: API
    files: Path

    def get(self, path: str, host: str) -> requests.Response:
        return requests.get(self.server.url + path, headers={"Host": host}, timeout=30)


@pytest.fixture
def site(settings: Settings, database_url: str, redis_client: redis.Redis, redis_prefix: str,
         tmp_path: Path) -> Iterator[Site]:
    """An empty store on `database_url`, the test's Redis keys, and the web process's app (the
    feeds and the ingest API) over real HTTP."""
    settings = dataclasses.replace(
        settings, database_url=database_url, redis_url=REDIS_URL, cache_prefix=redis_prefix,
        api_tokens=(ApiToken("cms", hash_token(TOKEN)),))
    store = Store(database_url)
    cache = RedisCache(redis_client, redis_prefix)
    server = LiveServer(create_app(settings, store, cache))
    refresher = Refresher(FeedBuilder(settings, store, cache), clock=ShiftedClock())
    try:
        yield Site(settings, store, refresher, server, API(server.url, TOKEN), tmp_path)
    finally:
        server.stop()
        store.close()


def odd_article(article_id: str) -> dict[str, object]:
    """An article whose tags, author, section and photo credit hold characters no feed can
    carry, published an hour ago."""
    published = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return {"id": article_id, "url": f"/news/{article_id}", "section": SECTION,
            "title": "Odd labels", "published": published, "tags": TAGS, "authors": AUTHORS,
            "images": [{"url": "/i/odd.jpg", "credit": "AFP\ufffe"}]}


def import_line(site: Site, doc: dict[str, object]) -> tuple[str, ImportReport, list[str]]:
    """`doc` as a one-line JSON Lines file through the importer: the line's `file:1`, the
    report and the error lines, each with its `file:1: ` taken off (after checking it)."""
    path = site.files / "article.jsonl"
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    errors = io.StringIO()
    report = Importer(site.settings, site.store, errors=errors,
                      progress=False).import_paths([path])
    lines = errors.getvalue().splitlines()
    assert all(line.startswith(f"{path}:1: ") for line in lines), lines
    return f"{path}:1", report, [line.removeprefix(f"{path}:1: ") for line in lines]


def send(site: Site, how: str, doc: dict[str, object]) -> str:
    """`doc` sent through the importer or the API; where its notes are logged."""
    if how == "import":
        where, report, errors = import_line(site, doc)
        assert (report.accepted, errors) == (1, [])
        return where
    answer = site.api.put(str(doc["id"]), doc)
    assert answer.status == 201, answer.json
    return f"api cms PUT /api/articles/{doc['id']}"


@pytest.mark.parametrize("how", ["import", "api"])
def test_unshowable_characters_leave_labels_with_a_note_and_every_document_serves(
        site: Site, how: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="feedsvc.ingest")
    where = send(site, how, odd_article("odd-1"))
    notes = [r.getMessage() for r in caplog.records if r.name.startswith("feedsvc.ingest")]
    for field, removed in (("tags[0]", "U+FFFE, U+FFFF"), ("tags[1]", "U+FFFD"),
                           ("authors[0]", "U+009F, U+FDD0"), ("section", "U+0085, U+FFFF"),
                           ("images[0].credit", "U+FFFE")):
        assert any(n.startswith(f"{where}: {field}: {removed} removed") for n in notes), \
            (field, notes)
    stored = site.store.get("odd-1")
    assert stored is not None
    assert (stored.tags, stored.authors, stored.section, stored.images[0].credit) == (
        ("Bad tag", "Replaced"), ("Ann Lee",), ("News", "Odd desk"), "AFP")

    assert {label_feed("tag", t) for t in stored.tags} | {
        label_feed("author", a) for a in stored.authors} | {stored.section_path} == set(FEEDS)

    site.refresher.full()  # failed in lxml, on every refresh, before the rule
    assert_served(site, FEEDS)


def assert_served(site: Site, feeds: dict[str, str]) -> None:
    """Each feed (path: the name it shows) answers 200 on every address in every format, valid,
    titled with its name; the OPML and the index page list it by that name."""
    for host in HOSTS:
        for path, shown in feeds.items():
            for filename in FEED_CONTENT_TYPES:
                response = site.get(f"/feeds/{quote(path)}/{filename}", host)
                assert response.status_code == 200, (host, path, filename)
                assert_valid(filename, response.content, (host, path, filename))
                if filename.endswith(".xml"):
                    parsed = feedparser.parse(response.content)
                    assert not parsed.bozo and parsed.feed.title == f"Example News: {shown}"
                elif filename == "feed.json":
                    assert response.json()["title"] == f"Example News: {shown}"
        opml = site.get("/feeds.opml", host)
        assert opml.status_code == 200
        titles = {o.get("title") for o in etree.fromstring(opml.content).iter("outline")}
        assert {f"Example News: {shown}" for shown in feeds.values()} <= titles
        index = site.get("/", host)
        assert index.status_code == 200
        for shown in feeds.values():
            assert f'title="Example News: {shown} (RSS)"' in index.text


def test_labels_a_store_kept_from_before_the_rule_render_without_those_characters(
        site: Site) -> None:
    """A store written before ingest applied the rule may hold such labels: render applies it
    where they enter (feed titles, the OPML, the index page, Roku's categories)."""
    published = datetime.now(UTC) - timedelta(hours=1)
    tag, author = "Old\ufffe tag", "Bo\x9f Li"
    site.store.upsert([Article(
        id="old-1", url="https://news.example/news/old-1", section=("News", "Old\uffff desk"),
        title="Old labels", published=published, updated=published, tags=(tag,),
        authors=(author,))])
    site.refresher.full()
    assert_served(site, {label_feed("tag", tag): "Old tag", label_feed("author", author): "Bo Li",
                         "news/old-desk": "Old desk"})


@pytest.mark.parametrize("how", ["import", "api"])
def test_a_label_with_nothing_showable_is_refused_with_its_field(site: Site, how: str) -> None:
    for field, value in (("tags", ["ok", "\ufffe\uffff"]), ("authors", ["\ufffd"]),
                         ("section", ["News", "\ufdd0\x9f"])):
        doc = {**odd_article("empty-label"), field: value}
        if how == "import":
            _, report, [refused] = import_line(site, doc)
            assert report.rejected == 1
        else:
            answer = site.api.put("empty-label", doc)
            assert answer.status == 422
            [refused] = answer.json["errors"]
        named = {"tags": "tags[1]", "authors": "authors[0]", "section": "section"}[field]
        assert refused.startswith(f"{named}: ") and "no character a feed can carry" in refused, \
            refused
    assert site.store.get("empty-label") is None


# Ids that break the grammar: each is refused, never stored in another spelling.
BAD_IDS = [(" padded", "white space"), ("padded ", "white space"), ("a\ufffdb", "U+FFFD"),
           ("a\ufffeb", "U+FFFE"), ("a\x9fb", "U+009F"), ("a\U0010ffff", "U+10FFFF")]


@pytest.mark.parametrize(("article_id", "reason"), BAD_IDS)
def test_an_id_outside_the_grammar_is_refused_not_normalised(site: Site, article_id: str,
                                                             reason: str) -> None:
    doc = {**odd_article(article_id), "tags": [], "authors": [], "section": "News"}
    _, report, [refused] = import_line(site, doc)
    assert report.rejected == 1
    assert refused.startswith("id: ") and reason in refused, refused
    answer = site.api.put(article_id, doc)
    assert answer.status == 422 and len(answer.json["errors"]) == 1
    assert answer.json["errors"][0].startswith("id: ") and reason in answer.json["errors"][0]
    assert site.store.get(article_id) is None
    assert site.store.get(article_id.strip()) is None


def test_an_api_path_id_that_is_not_utf8_is_refused_not_read_as_u_fffd(site: Site) -> None:
    """`%ff%fe` and `%fe%ff` were both stored as "\\ufffd\\ufffd": one article."""
    doc = {**odd_article("x"), "tags": [], "authors": []}
    del doc["id"]
    for path in ("/api/articles/%ff%fe", "/api/articles/%fe%ff", "/api/articles/a%c3",
                 "/api/articles/%c0%ae"):  # an overlong '.'
        for method, body in (("PUT", doc), ("DELETE", None)):
            answer = site.api.call(method, path, body)
            assert answer.status == 400, (method, path, answer.json)
            assert "UTF-8" in answer.json["error"] and len(answer.json["error"]) < 100
    assert site.store.get("\ufffd\ufffd") is None
    assert site.store.get("a\ufffd") is None
    assert site.api.put("é/ü", {**doc, "id": "é/ü"}).status == 201  # UTF-8 ids are fine
    assert site.api.delete("é/ü").status == 204
