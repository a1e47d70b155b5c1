"""Properties of the whole pipeline, over real HTTP, Redis and a SQLite store: whatever article
the importer or the ingest API accepts is served, valid, in every format on every address, and
both refreshes survive it and recover once it is gone; whatever path, header or User-Agent a
request brings gets an answer below 500 and leaves the web's threads running.

CI runs a few dozen examples of each, the same ones each run; `FEEDSVC_PROPERTY_EXAMPLES=N`
runs N new ones (`--hypothesis-show-statistics` counts them; README "Run the tests": how many
ran in ten minutes)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import feedparser
import hypothesis
import pytest
import redis
import requests
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from conftest import ROOT, LiveServer, own_prefix
from feedcheck import assert_valid
from feedsvc.build import FeedBuilder
from feedsvc.cache import RedisCache
from feedsvc.config import ApiToken, Settings, load_settings
from feedsvc.ingest.importer import Importer
from feedsvc.ingest.tokens import hash_token
from feedsvc.refresh import Refresher
from feedsvc.store import Store
from feedsvc.urls import FEED_CONTENT_TYPES
from feedsvc.web import create_app
from feedsvc.wsgi import with_api

pytestmark = pytest.mark.long  # a few hundred examples, each through a refresh and HTTP
TOKEN = "property-secret-0123456789abcdefghijklmnopqrstuvwxyz"
EXAMPLES = int(os.environ.get("FEEDSVC_PROPERTY_EXAMPLES", "0")) or None  # None: CI's
IMPORT_ERROR = re.compile(r"^(?P<file>.+):(?P<line>[0-9]+): (?P<field>[^\s:][^:]*): \S")
ARCHIVE_FORMATS = ("rss.xml", "atom.xml")


@dataclasses.dataclass
class Pipeline:
    settings: Settings
    store: Store
    refresher: Refresher
    server: LiveServer
    tmp: Path

    @property
    def hosts(self) -> list[str]:
        return [urlsplit(origin).netloc
                for origin in (self.settings.origin, *self.settings.mirrors)]

    def get(self, path: str, host: str) -> requests.Response:
        return requests.get(self.server.url + path, headers={"Host": host}, timeout=30)

    def api(self, method: str, article_id: str, doc: object = None) -> requests.Response:
        path = quote(article_id.encode("utf-8", "surrogatepass"), safe="")
        return requests.request(method, f"{self.server.url}/api/articles/{path}",
                                data=None if doc is None else json.dumps(doc),
                                headers={"Authorization": f"Bearer {TOKEN}",
                                         "Content-Type": "application/json",
                                         "Host": self.hosts[0]}, timeout=30)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, redis_client: redis.Redis) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("pipeline")
    prefixes = own_prefix(redis_client)
    settings = dataclasses.replace(
        load_settings(ROOT / "config" / "feedsvc.toml", environ={}),
        database_url=f"sqlite:///{tmp / 'store.sqlite3'}", reach_enabled=False,
        api_tokens=(ApiToken("cms", hash_token(TOKEN)),))
    store = Store(settings.database_url)
    cache = RedisCache(redis_client, next(prefixes))
    feeds = create_app(settings, store, cache, near_cache=False)  # Redis read on every request
    server = LiveServer(with_api(feeds, settings, cache))
    refresher = Refresher(FeedBuilder(settings, store, cache))
    refresher.full()
    try:
        yield Pipeline(settings, store, refresher, server, tmp)
    finally:
        server.stop()
        store.close()
        prefixes.close()


# Text that has broken a stage before: noncharacters, C1 controls, U+FFFD, lone surrogates,
# bidi controls, names that slug to nothing or to a reserved path, fullwidth and other digits.
ODD = st.sampled_from([
    "\ufffe", "\uffff", "\x9f", "\x85", "\ufffd", "\ud800", "\x00", "\x0b", "\u202e", "\u200c",
    "\U0010ffff", "\U0001fffe", "\ufdd0", "C++", "U.S.", "AT&T", "tag", "author", "archive", "_",
    "-", " ", "/", "..", ".", "%2F", "%ff", "٢٠٢٦", "２０２６", "Ⅻ", "İ", "ß", "ﬁ", "e\u0301",
    "<b>", "&amp;", "]]>", "\U0001f600", "Türkiye", "خاورمیانه", "東京",
])
TEXT = st.lists(ODD | st.text(max_size=12), max_size=5).map("".join)


def mostly(valid: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """Nine in ten values valid, so that many documents (of a dozen fields and more) reach the
    later stages with an odd value in a field or two; the rest anything."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 9 else valid)


def spiced(names: list[str]) -> st.SearchStrategy[str]:
    """A usual name with odd text around it: what ingest keeps, normalised, or refuses."""
    return st.builds(lambda before, name, after: before + name + after,
                     TEXT, st.sampled_from(names), TEXT)


NAMES = ["News", "World", "Middle East", "Turkey", "Oil", "Jane Doe <jane@example.org>", "Ann"]
NAME = mostly(st.sampled_from(NAMES), spiced(NAMES) | TEXT)
NUMBER = mostly(st.integers(min_value=0, max_value=10_000),
                st.none() | st.integers(min_value=-2**70, max_value=2**70) | st.booleans()
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4))
# Any date-time an RFC 3339 pattern can spell, from year 1 to 9999, with or without an offset,
# and text that only looks like one; mostly within a few years of now.
DATES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
RECENT = st.builds(lambda days, zone: (datetime.now(UTC) + timedelta(days=days)).isoformat()
                   .replace("+00:00", zone), st.floats(min_value=-2000, max_value=30),
                   st.sampled_from(["Z", "+00:00", "z"]))
DATE = mostly(RECENT, st.builds(lambda when, zone: when.isoformat() + zone, DATES,
                                st.sampled_from(["Z", "+00:00", "+14:00", "-12:00", "", "+03:30"]))
              | TEXT)
ARTICLE_ID = mostly(st.from_regex(r"\A[a-z0-9-]{1,12}\Z"), spiced(["a1"]) | TEXT)


def documents() -> st.SearchStrategy[dict]:
    """Documents over the article contract's whole schema (docs/contracts.md), most of them
    valid in shape so the later stages are reached, with odd values in every field."""
    text = mostly(spiced(["Words", "Kurdish and Persian: سلام"]), TEXT)
    image = st.fixed_dictionaries(
        {"url": mostly(st.sampled_from(["/i.jpg", "https://cdn.example/x.png"]), TEXT)},
        optional={"caption": text, "credit": NAME, "width": NUMBER, "height": NUMBER,
                  "type": mostly(st.just("image/png"), TEXT)})
    video = st.fixed_dictionaries(
        {"url": mostly(st.just("https://v.example.org/a.mp4"), TEXT)},
        optional={"duration": NUMBER, "thumbnail": st.just("/t.jpg"),
                  "type": st.sampled_from(["mp4", "hls", "x"]),
                  "quality": st.sampled_from(["HD", "SD", "FHD"])})
    related = st.fixed_dictionaries({"title": text, "url": mostly(st.just("/news/other"), TEXT)})
    return st.fixed_dictionaries(
        {"id": ARTICLE_ID,
         "url": mostly(st.sampled_from(["/news/a", "https://news.example/b"]),
                       st.just("/x%ff") | TEXT),
         "section": mostly(NAME, st.lists(NAME, min_size=1, max_size=3)),
         "title": text,
         "published": DATE},
        optional={"updated": DATE, "summary": text, "body": text,
                  "authors": st.lists(NAME, max_size=3), "tags": st.lists(NAME, max_size=4),
                  "language": mostly(st.sampled_from(["en", "tr", "fa", "en-GB"]), TEXT),
                  "images": st.lists(image, max_size=2), "videos": st.lists(video, max_size=2),
                  "related": st.lists(related, max_size=2),
                  "status": st.sampled_from(["published", "deleted", "draft"]) | st.none()})


def feed_paths(site: Pipeline) -> set[str]:
    """Every feed the OPML lists (each format), and the site documents."""
    opml = site.get("/feeds.opml", site.hosts[0])
    assert opml.status_code == 200, opml.text
    listed = {urlsplit(url).path for url in etree.fromstring(opml.content).xpath("//@xmlUrl")}
    paths = {"/feeds.opml", "/", "/mirrors.json"}
    for path in listed:
        stem = path.rsplit("/", 1)[0]
        paths |= {f"{stem}/{name}" for name in FEED_CONTENT_TYPES}
    return paths


def assert_served(site: Pipeline, extra: set[str] = frozenset()) -> None:
    """Every document answers 200 and is valid on every address; `extra` paths (an archive
    month, a label feed not listed) answer below 500 and, when 200, are valid."""
    for host in site.hosts:
        for path in sorted(feed_paths(site) | extra):
            response = site.get(path, host)
            name = path.rsplit("/", 1)[-1]
            where = (host, path)
            if path in extra:
                assert response.status_code < 500, (where, response.text)
                if response.status_code != 200:
                    continue
            else:
                assert response.status_code == 200, (where, response.text)
            if name in FEED_CONTENT_TYPES:
                assert_valid(name, response.content, where)
                if name.endswith(".xml"):
                    assert not feedparser.parse(response.content).bozo, where
            elif name == "mirrors.json":
                json.loads(response.content)
            elif name == "feeds.opml":
                etree.fromstring(response.content)


def refresh_both(site: Pipeline) -> None:
    """An incremental and then a full refresh; neither may raise or leave a feed failing."""
    site.refresher.incremental()
    site.refresher.full()
    health = site.get("/healthz", site.hosts[0]).json()
    assert health["status"] == "ok", health


def article_paths(site: Pipeline, article_id: str) -> set[str]:
    """The label feeds and archive months of a stored article (they are not all listed)."""
    article = site.store.get(article_id)
    if article is None:
        return set()
    paths = set()
    month = article.published.strftime("%Y-%m")
    for name in ARCHIVE_FORMATS:
        paths |= {f"/feeds/archive/{month}/{name}",
                  f"/feeds/{quote(article.section_path)}/archive/{month}/{name}"}
    return paths


@hypothesis.settings(max_examples=EXAMPLES or 12, deadline=None, derandomize=not EXAMPLES,
                     suppress_health_check=list(hypothesis.HealthCheck))
@given(doc=documents(), through_api=st.booleans(), ensure_ascii=st.booleans())
def test_what_is_accepted_is_served_everywhere_and_refreshes_survive_it(
        pipeline: Pipeline, doc: dict, through_api: bool, ensure_ascii: bool):
    article_id = doc["id"] if isinstance(doc["id"], str) else ""
    if through_api:
        answer = pipeline.api("PUT", article_id or "x", doc)
        assert answer.status_code < 500, answer.text
        accepted = answer.status_code in (200, 201)
        if not accepted:
            assert answer.status_code in (400, 404, 413, 415, 422), answer.text
    else:
        path = pipeline.tmp / "articles.jsonl"
        path.write_text(json.dumps(doc, ensure_ascii=ensure_ascii) + "\n", encoding="utf-8",
                        errors="surrogatepass")
        errors = io.StringIO()
        report = Importer(pipeline.settings, pipeline.store, errors=errors).import_paths([path])
        accepted = report.accepted == 1
        for line in errors.getvalue().splitlines():  # each refusal names file, line and field
            assert IMPORT_ERROR.match(line), line
            assert line.startswith(f"{path}:1: "), line
        assert accepted != bool(errors.getvalue()), errors.getvalue()
    hypothesis.event(f"{'accepted' if accepted else 'refused'} by the "
                     f"{'API' if through_api else 'importer'}")
    try:
        refresh_both(pipeline)
        assert_served(pipeline, article_paths(pipeline, article_id) if accepted else set())
    finally:
        if accepted:
            gone = pipeline.api("DELETE", article_id)
            assert gone.status_code in (204, 404), gone.text
    if accepted:
        refresh_both(pipeline)
        assert_served(pipeline)


# --- requests -------------------------------------------------------------------------------

PATH_BITS = st.sampled_from([
    "/", "feeds", "rss.xml", "atom.xml", "feed.json", "roku.json", "archive", "tag", "author",
    "news", "turkey", "2026-11", "٢٠٢٦-١١", "２０２６-１１", "9999-12", "0000-00", "..", ".", "",
    "%2F", "%2e%2e", "%ff%fe", "%00", "%", "?", "#", ";", "\u202e", "feeds.opml", "index.html",
    "mirrors.json", "healthz", "metrics", "admin", "api", "v1", "articles", "x" * 300,
])
RAW_PATH = st.lists(PATH_BITS | st.text(st.characters(codec="ascii", exclude_characters="\r\n "),
                                           max_size=8), max_size=8).map(
    lambda parts: "/" + "/".join(parts))
HEADER_VALUE = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60) \
    | st.sampled_from(["9" * 5000, "Feedly/1.0 (+http://www.feedly.com/fetcher.html; "
                       + "9" * 4400 + " subscribers)", "gzip;q=0." + "9" * 400, "*;q=1e999",
                       "W/\"x\", " * 50, "Mon, 31 Dec 9999 23:59:59 GMT", "bytes=0-" + "9" * 30])
HEADERS = st.dictionaries(st.sampled_from(["User-Agent", "Accept-Encoding", "If-None-Match",
                                           "If-Modified-Since", "Range", "X-Forwarded-For",
                                           "Accept", "Host", "Authorization", "Cookie"]),
                          HEADER_VALUE, max_size=5)


def raw_request(port: int, method: str, path: str, headers: dict[str, str]) -> int:
    """One request written byte for byte (no client library normalises the path); its status."""
    headers = {"Host": "news.example", **headers, "Connection": "close"}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"{method} ".encode() + path.encode("utf-8", "surrogatepass")
                     + b" HTTP/1.1\r\n" + head.encode("latin-1") + b"\r\n")
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    status = reply.split(b"\r\n", 1)[0].split(b" ")
    assert len(status) >= 2 and status[1].isdigit(), reply[:200]
    return int(status[1])


@pytest.fixture(scope="module")
def reach_site(tmp_path_factory, redis_client: redis.Redis) -> Iterator[tuple[LiveServer, object]]:
    """The demo site with reach counting on (its flush thread is the one a request killed)."""
    from conftest import DEMO_ARTICLES

    tmp = tmp_path_factory.mktemp("requests")
    prefixes = own_prefix(redis_client)
    settings = dataclasses.replace(
        load_settings(ROOT / "config" / "feedsvc.toml", environ={}),
        database_url=f"sqlite:///{tmp / 'store.sqlite3'}", reach_enabled=True)
    store = Store(settings.database_url)
    Importer(settings, store, errors=io.StringIO()).import_paths([DEMO_ARTICLES])
    cache = RedisCache(redis_client, next(prefixes))
    Refresher(FeedBuilder(settings, store, cache)).full()
    app = create_app(settings, store, cache)
    server = LiveServer(app)
    try:
        yield server, app
    finally:
        server.stop()
        store.close()
        prefixes.close()


@hypothesis.settings(max_examples=(EXAMPLES or 25) * 8, deadline=None,
                     derandomize=not EXAMPLES,
                     suppress_health_check=list(hypothesis.HealthCheck))
@given(method=st.sampled_from(["GET", "HEAD", "GET", "POST", "OPTIONS"]), path=RAW_PATH,
       headers=HEADERS)
def test_any_request_gets_an_answer_below_500_and_leaves_the_threads_running(
        reach_site, method: str, path: str, headers: dict[str, str]):
    server, app = reach_site
    status = raw_request(server.port, method, path, headers)
    assert 200 <= status < 500, (method, path, headers, status)
    reach = app.extensions["feedsvc"].reach
    reach.flush()  # what the flushing thread does next, at once: it must not raise
    health = requests.get(server.url + "/healthz", headers={"Host": "news.example"}, timeout=30)
    assert health.json()["status"] == "ok", health.text
