"""Hostile requests over raw sockets (nothing normalised on the way) against the app on the
test server and on the production one (the Procfile's granian web process), both serving one
Redis: each gets its status with a short plain body and no stack trace, and none changes what
other clients receive — the feeds' bytes and ETags stay those taken before any of it."""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import io
import json
import re
import socket
import tracemalloc
import uuid
from collections.abc import Iterator

import brotli
import feedparser
import pytest

from conftest import DEMO_ARTICLES, REDIS_URL, LiveServer, own_prefix
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, MemoryCache, RedisCache
from feedsvc.config import Settings, load_settings
from feedsvc.ingest.importer import Importer
from feedsvc.store import Store
from feedsvc.web import create_app
from processes import Service, Spawner

pytestmark = pytest.mark.slow  # its module's site runs a granian web process

CANONICAL, MIRROR = "news.example", "news-mirror.example"
FEEDS = ["/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/world/feed.json",
         "/feeds/roku.json", "/feeds.opml", "/"]
CODINGS = ["identity", "gzip", "br"]
SHORT = 100  # bytes: what an error body may take


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class _Received:
    """The bytes a server sent, as the socket http.client reads a response from."""

    def __init__(self, data: bytes):
        self.data = data

    def makefile(self, *_args, **_kwargs) -> io.BytesIO:
        return io.BytesIO(self.data)


def send(port: int, raw: bytes) -> Reply:
    """`raw` sent as it is; the reply read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    method = raw.split(b" ", 1)[0].decode("latin-1")
    response = http.client.HTTPResponse(_Received(received), method=method)
    response.begin()
    return Reply(response.status, response.headers, response.read())


def request(target: str, *headers: str, method: str = "GET", version: str = "HTTP/1.1",
            host: str | None = CANONICAL) -> bytes:
    """A request with the given header lines, Host first unless None, closing the connection."""
    lines = [f"{method} {target} {version}", *([f"Host: {host}"] if host is not None else []),
             *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def get(port: int, target: str, *headers: str, **options) -> Reply:
    return send(port, request(target, *headers, **options))


def assert_short_error(reply: Reply, status: int | set[int]) -> None:
    assert reply.status in (status if isinstance(status, set) else {status}), reply
    assert len(reply.body) < SHORT, reply.body
    assert b"Traceback" not in reply.body and b"File \"" not in reply.body
    if reply.body:
        assert reply.headers["Content-Type"].startswith("text/plain"), reply.headers


@dataclasses.dataclass
class Site:
    settings: Settings
    store: Store
    cache: RedisCache
    ports: dict[str, int]

    def snapshot(self, port: int) -> dict[tuple[str, str, str], tuple[int, str, bytes]]:
        """(status, ETag, bytes) of every reference document, address and coding."""
        return {(path, host, coding): _kept(get(port, path, f"Accept-Encoding: {coding}",
                                                host=host))
                for path in FEEDS for host in (CANONICAL, MIRROR) for coding in CODINGS}


def _kept(reply: Reply) -> tuple[int, str, bytes]:
    return reply.status, reply.headers["ETag"], reply.body


@pytest.fixture(scope="module")
def site(tmp_path_factory, redis_client) -> Iterator[Site]:
    """The demo articles imported and refreshed with the `feedsvc` commands into a SQLite
    store and the real Redis (a prefix of this module's own), served by a granian web process
    and by the test server, from the same cache."""
    tmp = tmp_path_factory.mktemp("hostile-requests")
    prefixes = own_prefix(redis_client)
    prefix = next(prefixes)
    spawn = Spawner(tmp)
    service = Service.deploy(spawn, tmp, redis_url=REDIS_URL, prefix=prefix,
                             database_url=f"sqlite:///{tmp / 'store.sqlite3'}")
    service.import_(DEMO_ARTICLES)
    refreshed = service.feedsvc("refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    settings = load_settings(service.env["FEEDSVC_CONFIG"], environ=service.env)
    store = Store(settings.database_url)
    cache = RedisCache(redis_client, prefix)
    live = LiveServer(create_app(settings, store, cache))
    try:
        yield Site(settings, store, cache, {"test server": live.port, "granian": service.web()})
    finally:
        live.stop()
        spawn.stop_all()
        store.close()
        prefixes.close()


@pytest.fixture(scope="module")
def before(site) -> dict:
    """What the servers answer before any hostile request: the same on both."""
    taken = {name: site.snapshot(port) for name, port in site.ports.items()}
    assert taken["test server"] == taken["granian"]
    assert {status for status, _, _ in taken["granian"].values()} == {200}
    return taken["granian"]


@pytest.fixture(params=["test server", "granian"])
def port(request, site, before) -> int:
    return site.ports[request.param]


@pytest.fixture
def granian(site, before) -> int:
    """For what the production server decides before the app sees the request."""
    return site.ports["granian"]


TRAVERSALS = [
    "/feeds/../feeds/rss.xml", "/feeds/news/../../etc/passwd", "/../../etc/passwd",
    "/feeds/%2e%2e/%2e%2e/etc/passwd", "/feeds/news/%2e%2e/rss.xml", "/feeds/..%2f..%2frss.xml",
    "/feeds/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/rss.xml", "/feeds/rss.xml%00", "/feeds/news%00/rss.xml",
    "/feeds/rss.xml%00.txt", "/feeds/..\\..\\rss.xml", "/feeds/news/turkey/rss.xml/..",
    "/feeds/%c0%ae%c0%ae/rss.xml", "/feeds/%ff%fe/rss.xml", "/feeds/./rss.xml/.",
    "/feeds/rss.xml;jsessionid=1", "/static/../../../etc/passwd", "/feeds.opml/..",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_gets_404(port, target):
    assert_short_error(get(port, target), 404)


def test_long_header_values_are_neither_parsed_nor_kept(site, before):
    """300 distinct 30 KB If-None-Match, Accept-Encoding and If-Modified-Since values: the
    headers' memos kept the last 256 of each with what they parsed to, about 100 MB in the
    server's process; such a value is now ignored as malformed, and nothing of it is kept."""
    port = site.ports["test server"]  # in this process, where tracemalloc sees its memory
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for n in range(300):
            tags = ", ".join(f'"{n}-{i}"' for i in range(3_000))
            reply = get(port, "/feeds/rss.xml", f"If-None-Match: {tags}",
                        f"Accept-Encoding: gzip;q=0.{n}, " + "x, " * 10_000,
                        f"If-Modified-Since: {n} " + "x" * 30_000)
            assert reply.status == 200
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 4 * 2**20, f"{held / 2**20:.1f} MiB kept"


@pytest.mark.parametrize("target", ["//feeds/news/turkey/atom.xml", "///feeds/rss.xml",
                                    "//feeds.opml", "//", "//mirrors.json"])
def test_extra_leading_slashes_name_no_document(granian, target):
    """One spelling per document: granian passes `//feeds/news/turkey/atom.xml` on as it came,
    and Werkzeug routed it as `/feeds/news/turkey/atom.xml`, a 200: a second URL of each
    document for any cache in front to keep apart. (The test server cannot be asked: its
    http.server merges leading slashes before the app sees the path.)"""
    assert_short_error(get(granian, target), 404)


def test_an_encoded_slash_names_the_same_feed_not_another_file(port, before):
    """WSGI servers decode %2F in the path: it is the same section path, the same bytes."""
    reply = get(port, "/feeds/news%2Fturkey/atom.xml", "Accept-Encoding: identity")
    assert _kept(reply) == before[("/feeds/news/turkey/atom.xml", CANONICAL, "identity")]


@pytest.mark.parametrize(("raw", "statuses"), [
    (request("/feeds/" + "a" * 65_536 + "/rss.xml"), {414, 431}),
    (request("/feeds/rss.xml?" + "a=1&" * 20_000), {414, 431}),
    (request("/feeds/rss.xml", "X-Long: " + "a" * 65_536), {431}),
    (request("/feeds/rss.xml", "Cookie: " + "c=1; " * 13_000), {431}),
    (request("/feeds/rss.xml", *(f"X-Header-{n}: v" for n in range(500))), {431}),
], ids=["64 KB path", "80 KB query", "64 KB header", "64 KB cookie", "500 headers"])
def test_oversized_request_heads_are_refused_before_the_app(granian, raw, statuses):
    assert_short_error(send(granian, raw), statuses)


@pytest.mark.parametrize("raw", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n",  # a TLS hello
    b"GET /feeds/rss.xml\r\n\r\n",
    b"GET /feeds/rss.xml HTTP/9.9\r\nHost: news.example\r\n\r\n",
    b"GET /feeds/rss.xml HTTP/1.1\r\nHost: news.example\r\nnot a header\r\n\r\n",
    b"GET /feeds/rss.xml HTTP/1.1\r\nHost: news.example\r\nX-A: 1\r\n folded\r\n\r\n",
    b"GET /feeds/rss.xml\x00 HTTP/1.1\r\nHost: news.example\r\n\r\n",
    b"GET /feeds/\xff\xfe/rss.xml HTTP/1.1\r\nHost: news.example\r\n\r\n",
    b"G\x01T /feeds/rss.xml HTTP/1.1\r\nHost: news.example\r\n\r\n",
    b"GET /feeds/rss.xml HTTP/1.1\r\nHost: news.example\rX-Injected: 1\r\n\r\n",
    b"GET /feeds/rss.xml HTTP/1.1\r\nHost: news.example\r\nIf-None-Match: \x7f\x01\r\n\r\n",
    b"GET /feeds/rss.xml HTTP/1.1\r\nHost: news.example\r\nAccept-Encoding: \x00gzip\r\n\r\n",
], ids=["tls", "http/0.9", "http/9.9", "no colon", "obs-fold", "raw NUL", "raw non-UTF-8",
        "control in method", "bare CR", "control in If-None-Match", "NUL in Accept-Encoding"])
def test_malformed_http_is_400(granian, raw):
    assert_short_error(send(granian, raw), 400)


MALFORMED_VALIDATORS = [
    "If-None-Match: \"unterminated", "If-None-Match: W/", "If-None-Match: ,,,,",
    "If-None-Match: " + '"' * 5000, "If-None-Match: *, \"x\"",
    "If-None-Match: " + ", ".join(f'"{n}"' for n in range(2000)),
    "If-Modified-Since: Mon, 99 Foo 99999 99:99:99 GMT", "If-Modified-Since: 0",
    "If-Modified-Since: -1", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
    "If-Modified-Since: " + "9" * 400, "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT, x",
]


@pytest.mark.parametrize("header", MALFORMED_VALIDATORS)
def test_malformed_validators_are_ignored(port, before, header):
    """A validator that is not one never gives a 304: the whole document, as before."""
    reply = get(port, "/feeds/rss.xml", header, "Accept-Encoding: identity")
    assert _kept(reply) == before[("/feeds/rss.xml", CANONICAL, "identity")]


MALFORMED_CODINGS = [
    "gzip;q=2", "br;q=-1, gzip;q=nan", ";;;,,,", "gzip;q=0.5;q=1", "x" * 8000,
    "*;q=0.5, identity;q=0.001", "gzip, gzip, gzip;q=0", "identity;q=0, gzip",
    "*;q=0", "identity;q=0", "br;q=0, gzip;q=0, identity;q=0",
]


@pytest.mark.parametrize("value", MALFORMED_CODINGS)
def test_malformed_accept_encoding_gets_a_coding_we_hold_or_406(port, before, value):
    reply = get(port, "/feeds/news/turkey/atom.xml", f"Accept-Encoding: {value}")
    if reply.status == 406:
        assert_short_error(reply, 406)
        return
    coding = reply.headers.get("Content-Encoding", "identity")
    assert _kept(reply) == before[("/feeds/news/turkey/atom.xml", CANONICAL, coding)]
    decode = {"identity": bytes, "gzip": gzip.decompress, "br": brotli.decompress}[coding]
    assert decode(reply.body) == before[("/feeds/news/turkey/atom.xml", CANONICAL,
                                         "identity")][2]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                                    "PROPFIND", "FOO", "X" * 5000])
def test_other_methods_are_405(port, method):
    reply = get(port, "/feeds/rss.xml", method=method)
    assert_short_error(reply, 405)
    assert set(reply.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_a_request_body_is_never_read(port):
    """No URL takes a body: a 1 GB upload gets its 405 at once, unread (no 413 needed)."""
    raw = request("/feeds/rss.xml", "Content-Length: 1000000000", "Content-Type: text/plain",
                  method="POST") + b"x" * 1000
    assert_short_error(send(port, raw), 405)


@pytest.mark.parametrize("host", [
    "news.example@evil.example", "evil.example/feeds", "news.example:99999999",
    "news.example evil", "news.example%0d%0aX-Injected: 1", "news.example\tevil", ":80",
    "", "news.example,evil.example", "[::1", "<script>",
])
def test_a_host_that_is_not_a_host_is_400(port, host):
    assert_short_error(get(port, "/feeds/rss.xml", host=host), 400)


@pytest.mark.parametrize("raw", [
    request("/feeds/rss.xml", host=None),
    request("/feeds/rss.xml", f"Host: {CANONICAL}", host="evil.example"),
    request("/feeds/rss.xml", f"Host: {MIRROR}", host=MIRROR),
], ids=["missing", "two different", "the same twice"])
def test_a_missing_or_repeated_host_is_400(port, raw):
    """RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a bad request."""
    assert_short_error(send(port, raw), 400)


@pytest.mark.parametrize(("raw", "path"), [
    (request("/feeds/rss.xml", host="evil.example"), "/feeds/rss.xml"),
    (request("/feeds/world/feed.json", host="EVIL.example:8080"), "/feeds/world/feed.json"),
    (request("/feeds.opml", host="news.example.evil.example"), "/feeds.opml"),
    (request("http://evil.example/feeds/rss.xml"), "/feeds/rss.xml"),
    (request("/feeds/rss.xml", host=None, version="HTTP/1.0"), "/feeds/rss.xml"),
    (request("/", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: http",
             "X-Forwarded-For: 10.0.0.1", "Forwarded: host=evil.example;proto=http"), "/"),
    (request("/feeds/rss.xml", f"X-Forwarded-Host: {MIRROR}"), "/feeds/rss.xml"),
    (request("/feeds/roku.json", "X-Forwarded-Host: news.example@evil"), "/feeds/roku.json"),
], ids=["unknown host", "unknown host and port", "suffixed host", "absolute-form target",
        "HTTP/1.0 without Host", "X-Forwarded-* untrusted", "X-Forwarded-Host a mirror",
        "X-Forwarded-Host not a host"])
def test_unknown_hosts_and_untrusted_forwarding_get_the_canonical_document(port, before, raw,
                                                                           path):
    """Nothing in a request can put a foreign domain into a document, or (from a client that
    is not a trusted proxy) pick another address's links."""
    reply = send(port, raw.replace(b"Connection: close", b"Accept-Encoding: identity\r\n"
                                                         b"Connection: close"))
    assert _kept(reply) == before[(path, CANONICAL, "identity")]
    assert b"evil" not in reply.body


CACHE_BUSTERS = ["?nocache=1", "?_=1732627200000", "?%00%ff%2e%2e", "?" + "a=&" * 1000,
                 "?format=atom&section=../../etc", "#fragment", "?v=1#x"]


def _renders(port: int) -> float:
    """The renders a web process has done on a miss (its /metrics)."""
    text = get(port, "/metrics").body.decode()
    return sum(float(m) for m in re.findall(
        r"^feedsvc_web_render_duration_seconds_count(?:\{[^}]*\})? (\S+)$", text, re.M))


def test_query_strings_and_unknown_paths_cannot_bust_the_cache(port, before):
    """The cache key is the path and the address, never the query: a varying query is the
    same hit; an unknown section is a 404 without a render."""
    renders = _renders(port)
    for suffix in CACHE_BUSTERS:
        reply = get(port, "/feeds/rss.xml" + suffix, "Accept-Encoding: gzip")
        assert _kept(reply) == before[("/feeds/rss.xml", CANONICAL, "gzip")], suffix
    for n in range(20):
        assert_short_error(get(port, f"/feeds/{uuid.uuid4().hex}/{n}/rss.xml"), 404)
    assert _renders(port) == renders


def test_a_miss_rendered_for_a_hostile_request_is_the_same_for_everyone(site, port, tmp_path):
    """The first reader of a feed nobody rendered yet sends every hostile header: what it
    gets rendered and cached for all is what a clean render gives."""
    section = f"Probe {uuid.uuid4().hex[:8]}"
    article = tmp_path / "probe.jsonl"
    article.write_text(json.dumps({
        "id": f"probe-{section}", "url": "/probe/1", "section": section, "title": "Probe",
        "published": "2020-01-01T00:00:00Z", "body": "<p>Probe</p>"}) + "\n")
    assert Importer(site.settings, site.store, progress=False).import_paths([article]).accepted
    path = "/feeds/" + section.lower().replace(" ", "-")
    reply = get(port, path + "/rss.xml?bust=1", "X-Forwarded-Host: evil.example",
                "X-Forwarded-Proto: http", "If-None-Match: *x", "Accept-Encoding: br;q=0",
                host="evil.example")
    assert reply.status == 200 and b"evil" not in reply.body
    renderer = FeedBuilder(site.settings, site.store, MemoryCache())
    clean = renderer.build(renderer.catalog()[path.removeprefix("/feeds/")])
    assert {key: site.cache.get(key).etag for key in clean} == \
           {key: entry.etag for key, entry in clean.items()}


ALL_HOSTILE = [
    *(request(t) for t in TRAVERSALS),
    *(request("/feeds/rss.xml", h) for h in MALFORMED_VALIDATORS),
    *(request("/feeds/rss.xml", f"Accept-Encoding: {v}") for v in MALFORMED_CODINGS),
    *(request("/feeds/rss.xml" + q, "X-Forwarded-Host: evil.example") for q in CACHE_BUSTERS),
    *(request(path, host=host) for path in FEEDS for host in ("evil.example", "news.example@x")),
    request("/feeds/rss.xml", "X-Forwarded-Host: news-mirror.example", "Forwarded: host=x"),
    request("/feeds/rss.xml", "Content-Length: 5", method="POST") + b"hello",
]


def test_after_every_hostile_request_everyone_gets_what_they_got_before(site, port, before):
    for raw in ALL_HOSTILE:
        reply = send(port, raw)
        assert reply.status < 500 and b"Traceback" not in reply.body, raw
    assert site.snapshot(port) == before
    for path, host, coding in before:  # and the shared cache holds what it held
        if coding == "identity" and path.startswith("/feeds/"):
            section, _, filename = path.removeprefix("/feeds/").rpartition("/")
            entry = site.cache.get(FeedKey(section, filename, f"https://{host}"))
            assert entry.etag == before[(path, host, coding)][1]


@pytest.mark.parametrize(("target", "host"), [
    ("/feeds//rss.xml", "evil.example"),
    ("/feeds///evil.example/rss.xml", "evil.example"),
    ("//evil.example/feeds/rss.xml", CANONICAL),
    ("/feeds/news//turkey/atom.xml", CANONICAL),
    ("/feeds//rss.xml", CANONICAL),
    ("/feeds.opml/", MIRROR),
], ids=["empty segment, forged Host", "host in the path, forged Host", "scheme-relative",
        "empty segment inside", "empty segment, our Host", "trailing slash"])
def test_no_redirect_is_built_from_the_request(port, target, host):
    """Werkzeug merges slashes with a 308 to `http://<Host>/…` (an open redirect, and a
    downgrade of an https origin): a path with an empty segment is simply no feed."""
    reply = get(port, target, host=host)
    assert_short_error(reply, 404)
    assert "Location" not in reply.headers


@pytest.mark.parametrize("host", [
    "NEWS-MIRROR.EXAMPLE", "news-mirror.example:80", "news-mirror.example:443",
    "news-mirror.example.", "News-Mirror.Example.:443", "news-mirror.example:",
])
def test_a_mirror_host_in_its_usual_spellings_gets_the_mirrors_links(port, before, host):
    """Case, a default port and the root's trailing dot name the same address."""
    reply = get(port, "/feeds/news/turkey/atom.xml", "Accept-Encoding: identity", host=host)
    assert _kept(reply) == before[("/feeds/news/turkey/atom.xml", MIRROR, "identity")]
    parsed = feedparser.parse(reply.body)
    assert not parsed.bozo and parsed.entries
    assert all(e.link.startswith(f"https://{MIRROR}/") for e in parsed.entries)


@pytest.mark.parametrize("host", ["news-mirror.example:8080", "news-mirror.example..",
                                  "news-mirror.example.:8443"])
def test_a_mirror_host_on_another_port_gets_the_canonical_document(port, before, host):
    reply = get(port, "/feeds/news/turkey/atom.xml", "Accept-Encoding: identity", host=host)
    assert _kept(reply) == before[("/feeds/news/turkey/atom.xml", CANONICAL, "identity")]
