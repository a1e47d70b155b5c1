"""config/nginx/feedsvc.conf for real (bench/_nginx.py: only its ports and paths replaced) in
front of the Procfile's web process: the same bytes and ETags as the origin on every address
and coding, 304s, one origin request per feed per revalidation, and idle or slow clients held
and dropped by nginx without reaching the origin."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from _nginx import nginx_front
from conftest import DEMO_ARTICLES, REDIS_URL, own_prefix
from hostile_clients import seconds_until_closed
from processes import Service, Spawner, enable_api

pytestmark = pytest.mark.slow  # starts nginx and the Procfile processes

HOSTS = ["news.example", "news-mirror.example", "example-news.tv"]
PATHS = ["/feeds/rss.xml", "/feeds/atom.xml", "/feeds/news/turkey/feed.json",
         "/feeds/world/roku.json", "/feeds.opml"]
CODINGS = ["identity", "gzip", "br", "gzip, deflate, br"]
MAX_AGE = 2  # feeds.refresh_interval: the origin's Cache-Control max-age
HEADER_TIMEOUT = 10  # client_header_timeout in the config
KEEPALIVE_TIMEOUT = 15  # keepalive_timeout
API_TOKEN = "nginx-test-token-0123456789abcdefghijklmnopqr"


@dataclass
class Front:
    origin: int  # the web process's port
    nginx: int
    spawn: Spawner
    web: object

    def origin_requests(self, path: str, expected: list[str]) -> list[str]:
        """The statuses the origin logged for `path` (granian's access log), once they are
        `expected` or after 3 s: a line is written just after its answer is sent."""
        deadline = time.monotonic() + 3
        while True:
            logged = re.findall(rf'"GET {re.escape(path)} HTTP/1\.1" (\d{{3}})',
                                self.spawn.log(self.web))
            if logged == expected or time.monotonic() > deadline:
                return logged
            time.sleep(0.05)


@pytest.fixture(scope="module")
def front(tmp_path_factory, redis_client) -> Iterator[Front]:
    tmp = tmp_path_factory.mktemp("nginx-front")
    prefixes = own_prefix(redis_client)
    spawn = Spawner(tmp)
    try:
        service = Service.deploy(spawn, tmp, redis_url=REDIS_URL, prefix=next(prefixes),
                                 database_url=f"sqlite:///{tmp / 'store.sqlite3'}",
                                 refresh_interval=MAX_AGE)
        enable_api(Path(service.env["FEEDSVC_CONFIG"]), API_TOKEN)
        service.import_(DEMO_ARTICLES)
        assert service.feedsvc("refresh").returncode == 0
        service.env.update(ACCESS_LOG="1", PYTHONUNBUFFERED="1")  # each request in the log, at once
        origin = service.web()
        with nginx_front(origin) as nginx:
            yield Front(origin, nginx.port, spawn, service.webs[origin])
    finally:
        spawn.stop_all()
        prefixes.close()


def get(port: int, path: str, host: str, **headers: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10, stream=False,
                        headers={"Host": host, **headers})


def fetch(port: int, path: str, host: str, coding: str) -> tuple[int, str, str, bytes]:
    response = requests.get(f"http://127.0.0.1:{port}{path}", timeout=10, stream=True,
                            headers={"Host": host, "Accept-Encoding": coding})
    body = response.raw.read(decode_content=False)
    return (response.status_code, response.headers.get("ETag"),
            response.headers.get("Content-Encoding", "identity"), body)


@pytest.mark.parametrize("host", [*HOSTS, "evil.example"])
def test_every_address_and_coding_gets_the_origins_bytes_and_etag(front, host):
    for path in PATHS:
        for coding in CODINGS:
            direct = fetch(front.origin, path, host, coding)
            assert direct[0] == 200
            for _ in range(2):  # a miss, then a hit
                assert fetch(front.nginx, path, host, coding) == direct, (path, coding)
    # A hit: the loop above may take longer than max-age on a busy machine, so the first of
    # these may be STALE (and update the entry in the background); one of the next is a HIT.
    caches: list[str] = []
    while len(caches) < 3 and "HIT" not in caches:
        time.sleep(0.2 if caches else 0)
        caches.append(get(front.nginx, PATHS[0], host,
                          **{"Accept-Encoding": "gzip"}).headers["X-Cache"])
    assert "HIT" in caches, caches


def test_a_conditional_request_gets_a_304_with_the_origins_etag(front):
    for host in HOSTS:
        for coding in CODINGS:
            etag = fetch(front.origin, "/feeds/news/feed.json", host, coding)[1]
            for _ in range(2):
                answer = get(front.nginx, "/feeds/news/feed.json", host,
                             **{"Accept-Encoding": coding, "If-None-Match": etag})
                assert (answer.status_code, answer.headers["ETag"], answer.content) == \
                    (304, etag, b"")


def at_once(port: int, path: str, host: str, count: int) -> set[tuple[int, bytes, str]]:
    """`count` requests for `path` (gzip) sent together, each on its own connection, connected
    first; the distinct (status, bytes, ETag) answered."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                   for _ in range(count)]
    try:
        for conn in connections:
            conn.connect()
        for conn in connections:
            conn.request("GET", path, headers={"Host": host, "Accept-Encoding": "gzip"})
        answers = [conn.getresponse() for conn in connections]
        return {(a.status, a.read(), a.headers["ETag"]) for a in answers}
    finally:
        for conn in connections:
            conn.close()


def test_the_origin_sees_one_request_per_feed_per_revalidation(front):
    path, host = "/feeds/news/iran/atom.xml", "news-mirror.example"
    status, etag, _coding, body = fetch(front.nginx, path, host, "gzip")
    assert status == 200
    assert front.origin_requests(path, ["200"]) == ["200"]
    # expired, while the origin's stale-while-revalidate allows the stale copy (readers get it
    # while one request revalidates), then past that (readers wait for one request: the lock);
    # nginx counts whole seconds
    for revalidation, wait in enumerate([MAX_AGE + 1.5, 2 * MAX_AGE + 1.5], start=1):
        time.sleep(wait)
        answers = at_once(front.nginx, path, host, 40)
        assert answers == {(200, body, etag)}
        # one conditional request (If-None-Match with the cached ETag), answered 304
        expected = ["200"] + ["304"] * revalidation
        time.sleep(0.5)  # more would have been logged by now
        assert front.origin_requests(path, expected) == expected


def closed(sock: socket.socket) -> bool:
    """Whether the peer has closed `sock` (end of stream or reset), without waiting."""
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def connections_to(port: int) -> int:
    """Established TCP connections to 127.0.0.1:`port` on this machine."""
    listed = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
                            capture_output=True, text=True, check=True).stdout
    return len(listed.splitlines())


def test_idle_and_slow_clients_are_dropped_by_nginx_without_reaching_the_origin(front):
    slow_path, reader_path = "/feeds/news/rss.xml", "/feeds/world/rss.xml"
    head = iter(f"GET {slow_path} HTTP/1.1\r\nHost: news.example\r\nX-Slow: ".encode()
                + b"x" * 100)
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(socket.create_connection(("127.0.0.1", front.nginx)))
                for _ in range(200)]
        slow = [stack.enter_context(socket.create_connection(("127.0.0.1", front.nginx)))
                for _ in range(50)]
        start = time.monotonic()
        held = set(idle + slow)
        most_at_origin = 0
        while held and time.monotonic() - start < HEADER_TIMEOUT + 5:
            byte = bytes([next(head)])
            for sock in held.intersection(slow):
                with contextlib.suppress(OSError):
                    sock.send(byte)
            assert get(front.nginx, reader_path, "news.example").status_code == 200
            most_at_origin = max(most_at_origin, connections_to(front.origin))
            time.sleep(1)
            held -= {sock for sock in held if closed(sock)}
        seconds = time.monotonic() - start
    assert not held, f"{len(held)} of 250 still open after {seconds:.0f} s"
    assert HEADER_TIMEOUT - 1 < seconds < HEADER_TIMEOUT + 3
    assert front.origin_requests(slow_path, []) == []
    assert most_at_origin <= 2  # nginx's kept-alive upstream connections for the reader


def test_nginx_closes_silent_connections_after_its_timeouts(front):
    head = b"HEAD /feeds/rss.xml HTTP/1.1\r\nHost: news.example\r\n\r\n"
    with ThreadPoolExecutor(2) as pool:
        silent = pool.submit(seconds_until_closed, front.nginx, 30)
        kept_alive = pool.submit(seconds_until_closed, front.nginx, 30, head)
        assert HEADER_TIMEOUT - 0.5 < silent.result() < HEADER_TIMEOUT + 1.5
        assert KEEPALIVE_TIMEOUT - 0.5 < kept_alive.result() < KEEPALIVE_TIMEOUT + 1.5


def test_the_ingest_api_passes_through_nginx_uncached(front):
    """/api/ takes bodies longer than the feeds' 1 KiB limit, and no answer is cached: the same
    PUT twice gets the origin's `created`, then `unchanged`."""
    url = f"http://127.0.0.1:{front.nginx}/api/articles/through-nginx"
    doc = {"url": "/n", "section": "News", "title": "Through nginx", "body": "x" * 5000,
           "published": "2026-11-24T10:00:00Z"}
    headers = {"Host": "news.example", "Authorization": f"Bearer {API_TOKEN}"}
    answers = [requests.put(url, json=doc, headers=headers, timeout=10) for _ in range(2)]
    assert [(a.status_code, a.json()["result"]) for a in answers] == [(201, "created"),
                                                                     (200, "unchanged")]
    refused = requests.put(url, json=doc, headers={"Host": "news.example"}, timeout=10)
    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
