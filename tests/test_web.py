"""The Flask app over real HTTP, its cache in the real Redis: routes, status codes, validators."""

from __future__ import annotations

import dataclasses
import gzip
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import feedparser
import lxml.html
import pytest
import requests
from lxml import etree

from conftest import DEMO_ARTICLES, free_port
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, RedisCache
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from feedsvc.render.formats import FORMATS
from feedsvc.store import Store


@pytest.fixture
def server(settings, store, redis_cache, live_server_factory):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    Refresher(FeedBuilder(settings, store, redis_cache)).full()
    return live_server_factory(settings, store, redis_cache)


CONTENT_TYPES = {
    "rss.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json",
    "roku.json": "application/json",
}


@pytest.mark.parametrize("path", ["/feeds/rss.xml", "/feeds/atom.xml",
                                  "/feeds/news/turkey/rss.xml", "/feeds/news/middle-east/atom.xml",
                                  "/feeds/world/rss.xml", "/feeds/feed.json",
                                  "/feeds/news/iran/feed.json", "/feeds/roku.json",
                                  "/feeds/world/roku.json"])
def test_feeds_are_served_with_their_content_type(server, path):
    response = requests.get(server.url + path, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPES[path.rsplit("/", 1)[1]]
    if path.endswith("roku.json"):
        assert response.json()["shortFormVideos"]
    elif path.endswith("feed.json"):  # feedparser 6.0 reads no JSON Feed; schema checks are in
        assert response.json()["items"]  # tests/test_jsonfeed_roku.py
    else:
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo and parsed.entries
    for header in ("ETag", "Last-Modified", "Cache-Control"):
        assert header in response.headers
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_cache_is_redis_and_a_hit_serves_its_bytes(server, redis_cache):
    entry = redis_cache.get(FeedKey("news/turkey", "rss.xml", "https://news.example"))
    assert entry is not None
    response = requests.get(server.url + "/feeds/news/turkey/rss.xml",
                            headers={"Accept-Encoding": "identity"}, timeout=5)
    assert response.content == entry.body
    assert response.headers["ETag"] == entry.etag


@pytest.mark.parametrize(("path", "status"), [
    ("/feeds/no-such-section/rss.xml", 404),
    ("/feeds/news/rss.html", 404),
    ("/feeds/news/turkey/feed.xml", 404),
    ("/feeds/", 404),
    ("/nothing-here", 404),
])
def test_unknown_section_or_format_is_404_with_a_short_body(server, path, status):
    response = requests.get(server.url + path, timeout=5)
    assert response.status_code == status
    assert len(response.content) < 100
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Traceback" not in response.text


def test_other_methods_are_405(server):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = requests.request(method, server.url + "/feeds/rss.xml", timeout=5)
        assert response.status_code == 405, method
        assert "GET" in response.headers["Allow"]
        assert len(response.content) < 100


def test_head_answers_like_get_without_a_body(server):
    get = requests.get(server.url + "/feeds/atom.xml", timeout=5)
    head = requests.head(server.url + "/feeds/atom.xml", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


def test_conditional_get_answers_304(server):
    url = server.url + "/feeds/news/rss.xml"
    first = requests.get(url, timeout=5)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag and "Cache-Control" in again.headers
    listed = requests.get(url, headers={"If-None-Match": f'"other", W/{etag}'}, timeout=5)
    assert listed.status_code == 304
    assert requests.get(url, headers={"If-None-Match": "*"}, timeout=5).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"stale"'}, timeout=5).status_code == 200
    since = requests.get(url, headers={"If-Modified-Since": last_modified}, timeout=5)
    assert since.status_code == 304
    older = formatdate(0, usegmt=True)
    assert requests.get(url, headers={"If-Modified-Since": older}, timeout=5).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
    both = requests.get(url, headers={"If-None-Match": '"stale"', "If-Modified-Since":
                                      last_modified}, timeout=5)
    assert both.status_code == 200
    garbage = requests.get(url, headers={"If-Modified-Since": "not a date"}, timeout=5)
    assert garbage.status_code == 200


def test_gzip_is_served_from_precompressed_bytes(server):
    url = server.url + "/feeds/rss.xml"
    plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=5)
    raw = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    compressed = raw.raw.read(decode_content=False)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed) == plain.content
    assert len(compressed) < len(plain.content) / 2
    assert raw.headers["ETag"] != plain.headers["ETag"]  # a strong tag per representation
    refused = requests.get(url, headers={"Accept-Encoding": "gzip;q=0"}, timeout=5)
    assert "Content-Encoding" not in refused.headers
    # the gzip variant's tag validates too
    revalidate = requests.get(url, headers={"If-None-Match": raw.headers["ETag"]}, timeout=5)
    assert revalidate.status_code == 304


def test_links_follow_the_host_and_unknown_hosts_get_canonical_links(server):
    for host, origin in [("news-mirror.example", "https://news-mirror.example"),
                         ("example-news.tv", "https://example-news.tv"),
                         ("evil.example", "https://news.example")]:
        response = requests.get(server.url + "/feeds/world/atom.xml",
                                headers={"Host": host}, timeout=5)
        assert response.status_code == 200
        parsed = feedparser.parse(response.content)
        assert all(e.link.startswith(origin) or "news.example" not in e.link
                   for e in parsed.entries), host
        assert b"evil.example" not in response.content


def test_a_cache_miss_renders_once_then_serves(settings, store, redis_cache, live_server_factory):
    """Nothing rendered yet (Redis flushed, say): the first request renders, later ones hit."""
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    server = live_server_factory(settings, store, redis_cache)
    key = FeedKey("world", "rss.xml", "https://news.example")
    assert redis_cache.get(key) is None
    response = requests.get(server.url + "/feeds/world/rss.xml", timeout=5)
    assert response.status_code == 200 and feedparser.parse(response.content).entries
    assert redis_cache.get(key).body == response.content


def test_redis_down_degrades_to_rendering_from_the_store(settings, store, live_server_factory):
    """Nothing listens where the cache should be: feeds are still served whole, health says so."""
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    unreachable = RedisCache.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="x:")
    server = live_server_factory(settings, store, unreachable)
    response = requests.get(server.url + "/feeds/news/rss.xml", timeout=10)
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo and len(parsed.entries) == settings.items_per_feed
    health = requests.get(server.url + "/healthz", timeout=10)
    assert health.status_code == 200
    assert {k: v for k, v in health.json().items() if k != "threads_down"} == {
        "status": "degraded", "store": True, "cache": False, "last_refresh": None,
        "failing": None}


def test_a_miss_with_the_store_down_is_503_with_retry_after(settings, redis_cache,
                                                             live_server_factory, caplog):
    """Nothing cached and nothing listens where the store should be: the miss path's store
    failure (the store's own StoreUnavailable) is a short 503 and one log line."""
    unreachable = Store(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    server = live_server_factory(settings, unreachable, redis_cache)
    with caplog.at_level("ERROR", logger="feedsvc.web.routes"):
        response = requests.get(server.url + "/feeds/world/rss.xml", timeout=10)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert len(response.content) < 300
    assert any("store unavailable while rendering" in r.getMessage() for r in caplog.records)
    unreachable.close()


def test_opml_lists_every_feed_on_the_requesting_host(server, settings):
    response = requests.get(server.url + "/feeds.opml", headers={"Host": "example-news.tv"},
                            timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    root = etree.fromstring(response.content)
    assert root.tag == "opml" and root.get("version") == "2.0"
    urls = {o.get("xmlUrl") for o in root.iter("outline")}
    for path in ("", "news/", "news/turkey/", "news/middle-east/", "news/iran/", "world/"):
        for filename in ("rss.xml", "atom.xml"):
            assert f"https://example-news.tv/feeds/{path}{filename}" in urls
    assert all(u.startswith("https://example-news.tv/") for u in urls)
    assert all(o.get("htmlUrl").startswith("https://example-news.tv/")
               for o in root.iter("outline"))
    # OPML 2.0 names versions of RSS only ("RSS" for 2.0; the W3C validator's
    # InvalidOutlineVersion)
    assert {(o.get("xmlUrl").rsplit("/", 1)[1], o.get("version"))
            for o in root.iter("outline")} == {
        ("rss.xml", "RSS"), ("atom.xml", None), ("feed.json", None)}


def test_index_page_has_autodiscovery_links(server):
    response = requests.get(server.url + "/", headers={"Host": "news-mirror.example"}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = lxml.html.fromstring(response.content)
    alternates = {(link.get("type"), link.get("href"))
                  for link in page.xpath("//head/link[@rel='alternate']")}
    assert ("application/rss+xml", "https://news-mirror.example/feeds/rss.xml") in alternates
    assert ("application/atom+xml",
            "https://news-mirror.example/feeds/news/turkey/atom.xml") in alternates
    assert "https://news.example/" in response.text  # the other addresses are named


def test_mirrors_json(server, settings):
    response = requests.get(server.url + "/mirrors.json", timeout=5)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"canonical": "https://news.example",
                               "alternates": ["https://news-mirror.example",
                                              "https://example-news.tv"]}


def test_x_forwarded_host_counts_only_from_trusted_proxies(settings, store, redis_cache,
                                                           live_server_factory):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    forwarded = {"X-Forwarded-Host": "example-news.tv", "X-Forwarded-Proto": "https"}
    untrusted = live_server_factory(settings, store, redis_cache)
    body = requests.get(untrusted.url + "/feeds/world/rss.xml", headers=forwarded, timeout=5)
    assert feedparser.parse(body.content).feed.link == "https://news.example/world"
    trusted_settings = dataclasses.replace(settings, trusted_proxies=("127.0.0.1",))
    trusted = live_server_factory(trusted_settings, store, redis_cache)
    body = requests.get(trusted.url + "/feeds/world/rss.xml", headers=forwarded, timeout=5)
    assert feedparser.parse(body.content).feed.link == "https://example-news.tv/world"


def _count_renders(server, method: str) -> list:
    """Calls of the web's renderer `method` from now on, each made slow (0.3 s) so that
    concurrent requests arrive while it runs."""
    renderer = server.app.extensions["feedsvc"].builder
    calls = []
    real = getattr(renderer, method)

    def counted(*args, **kwargs):
        calls.append(args)
        time.sleep(0.3)
        return real(*args, **kwargs)

    setattr(renderer, method, counted)
    return calls


def _read_at_once(server, requests_: list[tuple[str, str]]) -> list[requests.Response]:
    with ThreadPoolExecutor(len(requests_)) as pool:
        return list(pool.map(
            lambda r: requests.get(server.url + r[0], headers={"Host": r[1]}, timeout=30),
            requests_))


HOSTS = ("news.example", "news-mirror.example", "example-news.tv")


def test_concurrent_misses_of_one_feed_render_it_once(settings, store, redis_cache,
                                                      live_server_factory):
    """Sixteen readers ask for a feed nobody rendered yet, at once: one render, sixteen 200s.
    Likewise readers of every format and address of the site feed (one render makes all of
    them), and of the site documents (index, OPML, address list: rendered together)."""
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    server = live_server_factory(settings, store, redis_cache)
    feeds = _count_renders(server, "build")
    site = _count_renders(server, "build_site")

    responses = _read_at_once(server, [("/feeds/news/iran/rss.xml", HOSTS[0])] * 16)
    assert [r.status_code for r in responses] == [200] * 16
    assert len({r.content for r in responses}) == 1
    assert [spec.path for spec, *_ in feeds] == ["news/iran"]

    feeds.clear()
    every_format = [(f"/feeds/{filename}", host) for filename in FORMATS for host in HOSTS]
    assert [r.status_code for r in _read_at_once(server, every_format)] == [200] * 12
    assert [spec.path for spec, *_ in feeds] == [""]

    documents = [(path, host) for path in ("/", "/feeds.opml", "/mirrors.json")
                 for host in HOSTS]
    assert [r.status_code for r in _read_at_once(server, documents)] == [200] * 9
    assert len(site) == 1
