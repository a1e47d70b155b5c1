"""Feed readers that keep polling while a fault happens, as aggregators do, and check every
answer: a 200 must carry a whole feed that its parser and schema accept (feedcheck), a 304 must
answer a conditional request; anything else — another status, a broken body, a failed
connection — is recorded as an error."""

from __future__ import annotations

import gzip
import http.client
import itertools
import threading
import time
from dataclasses import dataclass, field

from feedcheck import assert_valid, valid_xml

HOSTS = ("news.example", "news-mirror.example", "example-news.tv")
# Every format, the site and sections at each depth.
FEEDS = ("/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/news/feed.json",
         "/feeds/world/roku.json", "/feeds/news/iran/rss.xml")
DROPPED = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


def fetch(conn: http.client.HTTPConnection, path: str, host: str,
          etag: str | None = None) -> tuple[int, str | None, bytes]:
    """One gzip-accepting GET (conditional with `etag`): status, ETag and the decoded body."""
    headers = {"Host": host, "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return response.status, response.getheader("ETag"), body


@dataclass
class Readers:
    """`threads` readers over `feeds` × every host; every other request of a feed is conditional
    on the ETag last seen. With `retry_dropped`, a connection dropped by the server (a killed
    worker) is reopened and the request sent once more; a second failure is an error."""

    port: int
    feeds: tuple[str, ...] = FEEDS
    threads: int = 2
    retry_dropped: bool = False
    pause: float = 0.01
    requests: int = 0
    not_modified: int = 0
    retried: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._read, args=(n,), daemon=True)
                         for n in range(self.threads)]

    def __enter__(self) -> Readers:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def assert_clean(self, at_least: int) -> None:
        assert not self.errors, f"{len(self.errors)} bad answers, first: {self.errors[:5]}"
        assert self.requests >= at_least, f"only {self.requests} requests"

    def _read(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        etags: dict[tuple[str, str], str] = {}
        targets = list(itertools.product(self.feeds, HOSTS))
        for count in itertools.count():
            if self._stop.is_set():
                break
            path, host = targets[(n + count) % len(targets)]
            etag = etags.get((path, host)) if count % 2 else None
            try:
                conn, status, tag, body = self._get(conn, path, host, etag)
                self._add("requests")
                if status == 304 and etag is not None:
                    self._add("not_modified")
                else:
                    assert status == 200, f"status {status}: {body[:200]!r}"
                    assert_valid(path.rsplit("/", 1)[1], body, f"{host}{path}")
                    etags[(path, host)] = tag
            except (AssertionError, OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(f"{host}{path}: {exc!r}"[:500])
                conn.close()
            self._stop.wait(self.pause)
        conn.close()

    def _get(self, conn: http.client.HTTPConnection, path: str, host: str, etag: str | None):
        try:
            return (conn, *fetch(conn, path, host, etag))
        except DROPPED:
            if not self.retry_dropped:
                raise
            self._add("retried")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return (conn, *fetch(conn, path, host, etag))

    def _add(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)


def served_titles(port: int, path: str, host: str) -> list[str]:
    """The item titles of an RSS feed as served now (a whole, valid feed is asserted)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        status, _, body = fetch(conn, path, host)
    finally:
        conn.close()
    assert status == 200, (status, body[:200])
    root = valid_xml("rss.xml", body, f"{host}{path}")
    return [title.text for title in root.iterfind("channel/item/title")]


def wait_for_title(port: int, path: str, title: str, seconds: float) -> list[str]:
    """The titles served on every address once each of them carries `title`."""
    deadline = time.monotonic() + seconds
    for host in HOSTS:
        while title not in (titles := served_titles(port, path, host)):
            assert time.monotonic() < deadline, f"{title!r} not served on {host} in {seconds}s"
            time.sleep(0.1)
    return titles
