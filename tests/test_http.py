"""HTTP behaviour (docs/contracts.md, RFC 9110/9111) over real HTTP with the cache in the real
Redis: validators and 304s, HEAD, content coding, cache headers, WebSub links, Host handling,
errors, metrics; the in-process copies and their invalidation; several workers at once, on granian
(the production web process) and gunicorn."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import brotli
import pytest
import redis
import requests

from conftest import DEMO_ARTICLES, REDIS_URL, ROOT, LiveServer, free_port
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, NearCache, RedisCache, RenderedFeed
from feedsvc.config import load_settings
from feedsvc.ingest.document import parse_article
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from feedsvc.store import Store
from feedsvc.web import create_app

FEED = "/feeds/news/rss.xml"
HUB = "https://hub.example/"


def _fill(settings, store, cache) -> None:
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    Refresher(FeedBuilder(settings, store, cache)).full()


@pytest.fixture(scope="module")
def server(tmp_path_factory, redis_client):
    """One server for the tests that only read (rendering the demo feeds takes seconds):
    its own SQLite store and Redis prefix, removed afterwards."""
    store_path = tmp_path_factory.mktemp("http") / "store.sqlite3"
    settings = dataclasses.replace(load_settings(ROOT / "config" / "feedsvc.toml", environ={}),
                                   database_url=f"sqlite:///{store_path}")
    prefix = f"feedsvc-test:{uuid.uuid4().hex[:12]}:"
    store = Store(settings.database_url)
    cache = RedisCache(redis_client, prefix)
    _fill(settings, store, cache)
    live = LiveServer(create_app(settings, store, cache))
    yield live
    live.stop()
    store.close()
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def own_server(settings, store, redis_cache, live_server_factory):
    """A server of this test's own, for tests that change what it serves."""
    _fill(settings, store, redis_cache)
    return live_server_factory(settings, store, redis_cache)


def get(server, path=FEED, method="GET", **headers):
    """One request with exactly these headers (requests' default Accept-Encoding removed)."""
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    return requests.request(method, server.url + path, timeout=10, stream=True,
                            headers={"Accept-Encoding": None, **headers})


def raw(response) -> bytes:
    """The body as sent, not decoded."""
    return response.raw.read(decode_content=False)


def raw_request(port: int, request: bytes) -> bytes:
    """Bytes a client like no library would send, e.g. without a Host header."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# ---- validators, 304, HEAD ------------------------------------------------------------------

def test_every_200_carries_validators_and_cache_headers(server):
    settings = server.app.extensions["feedsvc"].settings
    for path in ("/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/world/feed.json",
                 "/feeds/roku.json", "/feeds.opml"):
        response = get(server, path)
        assert response.status_code == 200, path
        assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["ETag"]), path
        assert response.headers["Last-Modified"].endswith(" GMT")
        interval = settings.refresh_interval
        assert response.headers["Cache-Control"] == (
            f"public, max-age={interval}, stale-while-revalidate={interval}, "
            "stale-if-error=86400")
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Link" not in response.headers  # no hubs configured


def test_etags_are_stable_and_differ_between_addresses(server):
    canonical = get(server, Host="news.example")
    mirror = get(server, Host="news-mirror.example")
    assert raw(canonical) != raw(mirror)
    assert canonical.headers["ETag"] != mirror.headers["ETag"]
    assert get(server, Host="news.example").headers["ETag"] == canonical.headers["ETag"]


@pytest.mark.parametrize("if_none_match", [
    "{etag}", "W/{etag}", '"other", {etag}', '"a", W/"b",W/{etag} , "c"', "*",
])
def test_if_none_match_answers_304_with_weak_comparison_lists_and_star(server, if_none_match):
    etag = get(server).headers["ETag"]
    response = get(server, If_None_Match=if_none_match.format(etag=etag))
    assert response.status_code == 304
    assert raw(response) == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert response.headers["Vary"] == "Accept-Encoding"


@pytest.mark.parametrize("if_none_match", [
    '"stale"', 'W/"stale", "older"', "{bare}", "", ",,,", "W/", '"unterminated', "**",
])
def test_if_none_match_without_our_tag_or_malformed_is_a_200(server, if_none_match):
    etag = get(server).headers["ETag"]
    response = get(server, If_None_Match=if_none_match.format(bare=etag.strip('"')))
    assert response.status_code == 200 and raw(response)


def test_if_modified_since_counts_only_without_if_none_match(server):
    last_modified = get(server).headers["Last-Modified"]
    assert get(server, If_Modified_Since=last_modified).status_code == 304
    assert get(server, If_Modified_Since=formatdate(2e9, usegmt=True)).status_code == 304
    assert get(server, If_Modified_Since=formatdate(0, usegmt=True)).status_code == 200
    for garbage in ("yesterday", "Sun, 99 Nov 1994 08:49:37 GMT", "", "0"):
        assert get(server, If_Modified_Since=garbage).status_code == 200, garbage
    # RFC 9110 §13.1.3: with If-None-Match present, If-Modified-Since is ignored both ways
    assert get(server, If_None_Match='"stale"',
               If_Modified_Since=last_modified).status_code == 200
    etag = get(server).headers["ETag"]
    assert get(server, If_None_Match=etag,
               If_Modified_Since=formatdate(0, usegmt=True)).status_code == 304


def test_head_answers_like_get_without_a_body(server):
    for encoding in ("identity", "gzip", "br"):
        full = get(server, Accept_Encoding=encoding)
        head = get(server, method="HEAD", Accept_Encoding=encoding)
        assert head.status_code == 200 and raw(head) == b""
        for name in ("ETag", "Last-Modified", "Content-Type", "Content-Length", "Cache-Control",
                     "Vary"):
            assert head.headers[name] == full.headers[name], (encoding, name)
        assert head.headers.get("Content-Encoding") == full.headers.get("Content-Encoding")
        assert int(head.headers["Content-Length"]) == len(raw(full))
    etag = get(server).headers["ETag"]
    assert get(server, method="HEAD", If_None_Match=etag).status_code == 304


# ---- content coding -------------------------------------------------------------------------

@pytest.mark.parametrize(("accept_encoding", "coding"), [
    (None, "identity"),                       # no header: the plain bytes
    ("", "identity"),                         # empty: identity only
    ("identity", "identity"),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("br", "br"),
    ("gzip, deflate, br", "br"),              # equal q: the smallest
    ("br;q=1, gzip;q=0.5", "br"),
    ("br;q=0.5, gzip;q=1", "gzip"),
    ("GZIP; Q=0.8, identity;q=0.9", "identity"),
    ("gzip;q=0", "identity"),                 # refused; identity is acceptable by default
    ("gzip;q=0.5", "gzip"),                   # identity unnamed: acceptable, least preferred
    ("*", "br"),
    ("*;q=0.1, gzip;q=0.2", "gzip"),
    ("*;q=0, identity", "identity"),
    ("deflate, compress", "identity"),        # none of ours but identity
    ("gzip;q=banana, br;q=7", "identity"),    # malformed q: those members are ignored
    ("\xe9\xff;;;,,", "identity"),
])
def test_accept_encoding_is_negotiated_with_q_values(server, accept_encoding, coding):
    plain = raw(get(server, Accept_Encoding="identity"))
    response = get(server, Accept_Encoding=accept_encoding)
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding", "identity") == coding
    assert response.headers["Vary"] == "Accept-Encoding"
    decode = {"identity": bytes, "gzip": gzip.decompress, "br": brotli.decompress}[coding]
    body = raw(response)
    assert decode(body) == plain
    assert int(response.headers["Content-Length"]) == len(body)
    if coding != "identity":
        assert len(body) < len(plain) / 3


@pytest.mark.parametrize("accept_encoding", ["identity;q=0", "*;q=0", "gzip;q=0, identity;q=0"])
def test_no_acceptable_coding_is_406(server, accept_encoding):
    """RFC 9110 §12.5.3: identity is refused and nothing else we have is accepted; §15.5.7
    lets us refuse rather than send a coding the client said it cannot take."""
    response = get(server, Accept_Encoding=accept_encoding)
    assert response.status_code == 406
    assert len(raw(response)) < 100 and "Traceback" not in response.text


def test_each_representation_has_its_own_tag_and_revalidates_as_itself(server):
    tags = {c: get(server, Accept_Encoding=c).headers["ETag"] for c in ("identity", "gzip", "br")}
    assert len(set(tags.values())) == 3
    assert tags["gzip"] == tags["identity"][:-1] + '-gzip"'
    gzip_copy = get(server, Accept_Encoding="gzip, br", If_None_Match=tags["gzip"])
    assert gzip_copy.status_code == 304 and gzip_copy.headers["ETag"] == tags["gzip"]
    # the client's gzip copy is no use to a client that no longer accepts gzip
    plain = get(server, Accept_Encoding="identity", If_None_Match=tags["gzip"])
    assert plain.status_code == 200 and plain.headers["ETag"] == tags["identity"]


# ---- WebSub links, hosts, methods, errors ---------------------------------------------------

def test_link_headers_name_the_hubs_and_the_feed_on_the_requesting_address(
        settings, store, redis_cache, live_server_factory):
    settings = dataclasses.replace(settings, websub_hubs=(HUB, "https://hub2.example/hub"))
    _fill(settings, store, redis_cache)
    server = live_server_factory(settings, store, redis_cache)
    response = get(server, "/feeds/world/atom.xml", Host="news-mirror.example")
    assert response.headers["Link"] == (
        f'<{HUB}>; rel="hub", <https://hub2.example/hub>; rel="hub", '
        '<https://news-mirror.example/feeds/world/atom.xml>; rel="self"')
    assert response.links["self"]["url"] == "https://news-mirror.example/feeds/world/atom.xml"
    site = get(server, "/feeds/rss.xml", Host="evil.example")
    assert site.links["self"]["url"] == "https://news.example/feeds/rss.xml"
    revalidated = get(server, "/feeds/world/atom.xml", Host="news-mirror.example",
                      If_None_Match=response.headers["ETag"])
    assert revalidated.status_code == 304
    assert revalidated.headers["Link"] == response.headers["Link"]
    assert "Link" not in get(server, "/feeds.opml").headers  # not a feed


def test_the_self_link_of_a_feed_with_a_persian_slug_is_an_ascii_uri(
        settings, store, redis_cache, live_server_factory):
    """HTTP headers are ASCII: the Link header names a non-ASCII slug percent-encoded (the raw
    IRI could not be sent: the request hung, unanswered), on the miss and on the hit."""
    settings = dataclasses.replace(settings, websub_hubs=(HUB,))
    store.upsert([parse_article({"id": "fa", "url": "/fa", "section": "خاورمیانه", "title": "T",
                                 "published": "2026-11-20T10:00:00Z", "tags": ["ایران"]},
                                origin=settings.origin, timezone=settings.timezone)])
    Refresher(FeedBuilder(settings, store, redis_cache)).full()
    server = live_server_factory(settings, store, redis_cache)
    for path in ("/feeds/خاورمیانه/rss.xml", "/feeds/tag/ایران/atom.xml"):
        for _ in range(2):  # the tag feed's miss, then hits
            response = get(server, path, Host="news-mirror.example")
            assert response.status_code == 200, path
            assert response.links["self"]["url"] == "https://news-mirror.example" + quote(path)


def test_host_must_be_a_host_but_unknown_hosts_get_canonical_links(server):
    port = server.port
    missing = raw_request(port, b"GET /feeds/rss.xml HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert b" 400 " in missing.split(b"\r\n", 1)[0]
    for host in (b"evil.example/../x", b"a.example, b.example", b"news example", b"<x>"):
        answer = raw_request(port, b"GET /feeds/rss.xml HTTP/1.1\r\nHost: " + host +
                             b"\r\nConnection: close\r\n\r\n")
        assert b" 400 " in answer.split(b"\r\n", 1)[0], host
        assert b"Traceback" not in answer and len(answer.split(b"\r\n\r\n", 1)[1]) < 100
    old = raw_request(port, b"GET /feeds/rss.xml HTTP/1.0\r\n\r\n")
    assert old.split(b"\r\n", 1)[0].endswith(b" 200 OK")
    assert b"https://news.example/feeds/rss.xml" in old
    for host in ("unknown.example", "127.0.0.1:8080", "[::1]:80", "NEWS-MIRROR.EXAMPLE"):
        assert get(server, Host=host).status_code == 200, host
    assert b"news-mirror.example" in raw(get(server, Host="NEWS-MIRROR.EXAMPLE"))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                                    "BREW"])
def test_methods_other_than_get_and_head_are_405(server, method):
    for path in (FEED, "/feeds.opml", "/healthz", "/metrics"):
        response = get(server, path, method=method)
        assert response.status_code == 405, (method, path)
        assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD"}
        assert len(raw(response)) < 100


def test_malformed_headers_never_cause_a_500(server):
    hostile = {"If_None_Match": "W/\"\xff\", ,\t*, \"", "If_Modified_Since": "\xe9" * 300,
               "Accept_Encoding": ";q=;q=0.5;;,*;q", "X_Forwarded_Host": "\x00evil"}
    for name, value in hostile.items():
        assert get(server, **{name: value}).status_code == 200, name
    assert get(server, Accept_Encoding="gzip;q=" + "9" * 5000).status_code == 200


def test_an_unexpected_error_is_a_short_500_without_a_trace(
        settings, store, redis_cache, live_server_factory, monkeypatch):
    server = live_server_factory(settings, store, redis_cache)  # nothing cached: a miss

    def broken(*_args):
        raise RuntimeError("secret detail")

    services = server.app.extensions["feedsvc"]
    monkeypatch.setattr(services.builder, "build", broken)
    monkeypatch.setattr(services.builder, "catalog", lambda: {"": object()})
    response = get(server, "/feeds/rss.xml")
    assert response.status_code == 500
    assert response.text == "500 Internal Server Error\n"


# ---- health and metrics ---------------------------------------------------------------------

_SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$', re.MULTILINE)


def _metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The sample `name` with exactly these labels (in any order) from a Prometheus scrape."""
    for sample, label_text, value in _SAMPLE.findall(text):
        if sample == name and dict(re.findall(r'(\w+)="([^"]*)"', label_text)) == labels:
            return float(value)
    assert default is not None, f"{name} {labels} not in metrics"
    return default


def test_metrics_count_requests_latency_cache_lookups_and_the_last_refresh(
        own_server, redis_cache):
    server = own_server
    finished = time.time() - 120
    redis_cache.set_state("refresh", json.dumps(
        {"kind": "full", "finished_at": finished, "seconds": 1.25, "feeds": 6,
         "documents": 81, "changes": 0}))
    before = get(server, "/metrics").text
    route = "/feeds/<path:section>/<filename>"
    labels = {"route": route, "method": "GET", "status": "200"}
    count = _metric(before, "feedsvc_http_requests_total", 0.0, **labels)
    hits = _metric(before, "feedsvc_cache_lookups_total", 0.0, result="hit")
    sent = _metric(before, "feedsvc_http_response_body_bytes_total", 0.0, route=route)
    canonical = _metric(before, "feedsvc_http_requests_by_address_total", 0.0,
                        address="https://news.example")
    bodies = [len(get(server).content) for _ in range(3)]
    get(server, "/feeds/nowhere/rss.xml")
    after = get(server, "/metrics")
    assert after.headers["Content-Type"].startswith("text/plain; version=")
    text = after.text
    assert _metric(text, "feedsvc_http_requests_total", **labels) == count + 3
    assert _metric(text, "feedsvc_http_requests_total", route=route, method="GET",
                   status="404") >= 1
    assert _metric(text, "feedsvc_cache_lookups_total", result="hit") >= hits + 3
    assert _metric(text, "feedsvc_http_response_body_bytes_total", route=route) >= (
        sent + sum(bodies))
    assert _metric(text, "feedsvc_http_requests_by_address_total",
                   address="https://news.example") >= canonical + 4
    assert _metric(text, "feedsvc_http_request_duration_seconds_count", route=route) >= 4
    assert _metric(text, "feedsvc_last_refresh_timestamp_seconds") == pytest.approx(finished)
    assert _metric(text, "feedsvc_last_refresh_duration_seconds") == 1.25
    assert _metric(text, "feedsvc_feed_age_seconds") == pytest.approx(120, abs=10)
    assert _metric(text, "feedsvc_last_refresh_documents") == 81


def test_healthz_reports_store_cache_and_the_last_refresh(server):
    health = get(server, "/healthz").json()
    assert health["status"] == "ok" and health["store"] and health["cache"]
    assert health["last_refresh"]["kind"] == "full"
    assert 0 <= health["last_refresh"]["age_seconds"] < 600
    assert health["last_refresh"]["feeds"] == 6


# ---- in-process copies (NearCache) ----------------------------------------------------------

class CountingCache(RedisCache):
    """The real RedisCache, counting the entries it reads."""

    reads = 0

    def get(self, key):
        self.reads += 1
        return super().get(key)


def _entry(text: str):
    return RenderedFeed.of(text.encode(), "application/rss+xml; charset=utf-8",
                           datetime.now(UTC)).compress()


def _settled(near: NearCache, key: FeedKey, seconds: float = 5) -> None:
    """Wait until `key` is served from the process's copy (the notices are flowing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = near.shared.reads
        near.get(key)
        if near.shared.reads == before:
            return
        time.sleep(0.02)
    raise AssertionError("the in-process copy was never trusted")


def _eventually(check, seconds: float = 2.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


@pytest.fixture
def near(redis_client, redis_prefix):
    near = NearCache(CountingCache(redis_client, redis_prefix))
    yield near
    near.close()


def test_a_copy_is_served_without_redis_and_dropped_when_another_process_writes(
        near, redis_client, redis_prefix):
    key = FeedKey("news", "rss.xml", "https://news.example")
    other_process = RedisCache(redis.Redis.from_url(REDIS_URL), redis_prefix)
    other_process.put_many({key: _entry("one")})
    _settled(near, key)
    reads = near.shared.reads
    assert all(near.get(key).body == b"one" for _ in range(100))
    assert near.shared.reads == reads
    other_process.put_many({key: _entry("two")})
    _eventually(lambda: near.get(key).body == b"two", seconds=1)
    redis_client.delete(near.shared.redis_key(key))
    _eventually(lambda: near.get(key) is None, seconds=1)


def test_copies_are_not_trusted_while_the_notices_are_cut_off(near, redis_client, redis_prefix):
    key = FeedKey("", "atom.xml", "https://news.example")
    near.put_many({key: _entry("one")})
    _settled(near, key)
    listener = f"feedsvc-invalidation:{redis_prefix}feed:"
    killed = [redis_client.client_kill_filter(_id=client["id"])
              for client in redis_client.client_list() if client["name"] == listener]
    assert killed == [1]

    def reads_redis() -> bool:
        before = near.shared.reads
        near.get(key)
        return near.shared.reads > before

    _eventually(reads_redis, seconds=1)
    # no notices now (a write would go unannounced), so every get reads Redis
    RedisCache(redis_client, redis_prefix).put_many({key: _entry("two")})
    assert near.get(key).body == b"two"
    assert reads_redis()
    _settled(near, key)  # reconnected: trusted again
    assert near.get(key).body == b"two"


def test_copies_stay_within_their_memory_budget(redis_client, redis_prefix):
    keys = [FeedKey(f"s{i}", "rss.xml", "https://news.example") for i in range(3)]
    entry = _entry("x" * 10_000)
    RedisCache(redis_client, redis_prefix).put_many(dict.fromkeys(keys, entry))
    near = NearCache(CountingCache(redis_client, redis_prefix), max_bytes=2 * entry.size)
    try:
        for key in keys:
            _settled(near, key)
        reads = near.shared.reads
        near.get(keys[2])
        near.get(keys[1])
        assert near.shared.reads == reads  # the two most recent are held
        near.get(keys[0])
        assert near.shared.reads == reads + 1  # the oldest was let go
    finally:
        near.close()


def test_without_near_cache_each_request_reads_redis(settings, store, redis_cache):
    """`create_app(near_cache=False)`, the access pattern bench/serve.py compares against."""
    _fill(settings, store, redis_cache)
    server = LiveServer(create_app(settings, store, redis_cache, near_cache=False))
    try:
        assert server.app.extensions["feedsvc"].cache is redis_cache
        key = FeedKey("news", "rss.xml", "https://news.example")
        redis_cache.put_many({key: _entry("written just now")})
        assert raw(get(server, Host="news.example")) == b"written just now"
    finally:
        server.stop()


class RedisProxy:
    """A TCP relay to the real Redis that can be cut: 'Redis is down' for one cache without
    touching the server other tests use."""

    def __init__(self, port: int = 6379):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_redis_down_serves_the_last_known_copy(settings, store, redis_prefix,
                                               live_server_factory, monkeypatch):
    proxy = RedisProxy(redis.Redis.from_url(REDIS_URL).connection_pool.connection_kwargs["port"])
    cache = RedisCache.from_url(f"redis://127.0.0.1:{proxy.port}/0", prefix=redis_prefix)
    _fill(settings, store, cache)
    server = live_server_factory(settings, store, cache)
    served = get(server)
    proxy.cut()
    rendered = get(server, "/feeds/world/atom.xml")  # never served before: from the store
    assert rendered.status_code == 200

    def no_store(*_args):
        raise RuntimeError("rendering is not expected here")

    monkeypatch.setattr(server.app.extensions["feedsvc"].builder, "build", no_store)
    for path, before in ((FEED, served), ("/feeds/world/atom.xml", rendered)):
        after = get(server, path)
        assert after.status_code == 200, path
        assert raw(after) == raw(before) and after.headers["ETag"] == before.headers["ETag"]
    assert get(server, "/healthz").json()["cache"] is False


# ---- several workers: the production web process and the gunicorn way ---------------------

WEB_PROCESSES = {
    "granian": [sys.executable, "-m", "feedsvc.web"],
    "gunicorn": [str(Path(sys.executable).parent / "gunicorn"), "-c", "config/gunicorn.conf.py",
                 "feedsvc.web:create_app()"],
}


@pytest.fixture(params=sorted(WEB_PROCESSES))
def web_process(request, tmp_path, settings, store, redis_prefix):
    """The web process with two workers over our Redis prefix; yields (url, cache)."""
    cache = RedisCache.from_url(REDIS_URL, prefix=redis_prefix)
    _fill(settings, store, cache)
    config = tmp_path / "feedsvc.toml"
    config.write_text((ROOT / "config" / "feedsvc.toml").read_text().replace(
        'key_prefix = "feedsvc:"', f'key_prefix = "{redis_prefix}"'))
    port = free_port()
    env = {**os.environ, "FEEDSVC_CONFIG": str(config), "DATABASE_URL": settings.database_url,
           "REDIS_URL": REDIS_URL, "PORT": str(port), "HOST": "127.0.0.1",
           "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "XDG_RUNTIME_DIR": str(tmp_path)}  # where gunicorn would put a control socket
    log = tmp_path / "web.log"
    with log.open("wb") as output:
        process = subprocess.Popen(WEB_PROCESSES[request.param], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            _eventually(lambda: _answers(url), seconds=30)
        except AssertionError:
            raise AssertionError(f"no answer from {request.param}:\n{log.read_text()}") from None
        assert not (tmp_path / "gunicorn.ctl").exists()  # no admin socket
        yield url, cache
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(15)
        # and any worker the server left behind, should it leave one
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_every_worker_serves_the_same_bytes_and_sees_a_new_render_at_once(web_process):
    url, cache = web_process
    key = FeedKey("news", "rss.xml", "https://news.example")

    def etags() -> set[str]:  # new connections, so both workers answer some
        headers = {"Host": "news.example", "Accept-Encoding": "identity", "Connection": "close"}
        return {requests.get(url + FEED, timeout=5, headers=headers).headers["ETag"]
                for _ in range(20)}

    assert etags() == {cache.get(key).etag}
    cache.put_many({key: _entry("re-rendered")})
    new = cache.get(key).etag
    _eventually(lambda: etags() == {new}, seconds=2)
    assert etags() == {new}


def test_metrics_add_up_every_worker(web_process):
    url, _ = web_process
    for _ in range(30):
        requests.get(url + FEED, timeout=5, headers={"Connection": "close"})
    route = "/feeds/<path:section>/<filename>"
    scrapes = {_metric(requests.get(url + "/metrics", timeout=5,
                                    headers={"Connection": "close"}).text,
                       "feedsvc_http_requests_total", route=route, method="GET", status="200")
               for _ in range(6)}
    assert scrapes == {30.0}
