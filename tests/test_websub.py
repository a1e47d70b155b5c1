"""WebSubPublisher against real local HTTP servers playing the hubs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from conftest import free_port
from feedsvc.build import FeedBuilder
from feedsvc.ingest.document import parse_article
from feedsvc.refresh import Refresher, websub
from feedsvc.refresh.websub import WebSubPublisher

LOGGER = "feedsvc.refresh.websub"
TOPICS = ["https://example.com/feeds/rss.xml", "https://example.com/feeds/atom.xml",
          "https://mirror.example.net/feeds/rss.xml"]


@dataclass(frozen=True)
class Request:
    method: str
    content_type: str | None
    form: dict[str, list[str]]
    at: float  # time.monotonic() when it arrived

    @property
    def urls(self) -> list[str]:
        return self.form.get("hub.url", [])


class FakeHub:
    """An HTTP server that records every request and answers with `replies` in turn (the last
    one repeated); a reply is a status or a (status, headers) pair. Each answer waits for `gate`,
    if given, then `delay` seconds."""

    def __init__(self, replies: list, delay: float, gate: threading.Event | None) -> None:
        self.replies = replies or [204]
        self.requests: list[Request] = []
        self.arrived = threading.Event()
        lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    index = len(hub.requests)
                    hub.requests.append(Request(self.command, self.headers.get("Content-Type"),
                                                parse_qs(body.decode()), time.monotonic()))
                hub.arrived.set()
                if gate is not None:
                    gate.wait(5)
                time.sleep(delay)
                reply = hub.replies[min(index, len(hub.replies) - 1)]
                status, headers = reply if isinstance(reply, tuple) else (reply, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hub"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()


@pytest.fixture
def start_hub() -> Iterator:
    hubs: list[FakeHub] = []

    def start(*replies: object, delay: float = 0.0,
              gate: threading.Event | None = None) -> FakeHub:
        hub = FakeHub(list(replies), delay, gate)
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.server.shutdown()
        hub.server.server_close()


@pytest.fixture
def make_publisher() -> Iterator:
    made: list[WebSubPublisher] = []

    def make(hubs: list[str], **options: object) -> WebSubPublisher:
        options = {"backoff": 0.01, "timeout": 2.0, **options}
        publisher = WebSubPublisher(hubs, **options)
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        publisher.close(timeout=2)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_topics_go_in_one_form_encoded_post(start_hub, make_publisher, logs):
    hub = start_hub()
    publisher = make_publisher([hub.url])
    publisher.publish(TOPICS + TOPICS[:1])

    assert publisher.flush(5)
    assert len(hub.requests) == 1
    request = hub.requests[0]
    assert request.method == "POST"
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form == {"hub.mode": ["publish"], "hub.url": TOPICS, "hub.topic": TOPICS}
    assert records(logs, logging.INFO) == [f"WebSub hub {hub.url} notified of 3 topic(s)"]


def test_topics_queued_during_a_delivery_are_coalesced(start_hub, make_publisher):
    gate = threading.Event()
    hub = start_hub(gate=gate)
    publisher = make_publisher([hub.url])
    publisher.publish(["a"])
    assert hub.arrived.wait(5)  # "a" is in flight, held at the hub until the gate opens
    publisher.publish(["b", "c"])
    publisher.publish(["c", "b", "d"])
    publisher.publish(["a", "d"])
    gate.set()

    assert publisher.flush(5)
    assert [r.urls for r in hub.requests] == [["a"], ["b", "c", "d", "a"]]


def test_batches_hold_at_most_batch_size_topics(start_hub, make_publisher):
    hub = start_hub()
    publisher = make_publisher([hub.url], batch_size=2)
    publisher.publish(["a", "b", "c", "d", "e"])

    assert publisher.flush(5)
    assert [r.urls for r in hub.requests] == [["a", "b"], ["c", "d"], ["e"]]


def test_every_hub_is_notified(start_hub, make_publisher):
    first, second = start_hub(), start_hub(202)
    publisher = make_publisher([first.url, second.url])
    publisher.publish(TOPICS)

    assert publisher.flush(5)
    assert [r.urls for r in first.requests] == [TOPICS]
    assert [r.urls for r in second.requests] == [TOPICS]


def test_5xx_is_retried_until_delivered(start_hub, make_publisher, logs):
    hub = start_hub(503, 503, 204)
    publisher = make_publisher([hub.url], backoff=0.01)
    started = time.monotonic()
    publisher.publish(TOPICS)

    assert publisher.flush(5)
    assert time.monotonic() - started < 1
    assert [r.urls for r in hub.requests] == [TOPICS] * 3
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 2
    assert all(hub.url in w and "503" in w for w in warnings)
    assert records(logs, logging.INFO) == [f"WebSub hub {hub.url} notified of 3 topic(s)"]
    assert records(logs, logging.ERROR) == []


def test_retry_after_is_honoured(start_hub, make_publisher, logs):
    hub = start_hub((429, {"Retry-After": "0.3"}), 204)
    # Without the header the retry would wait 30 s and the flush below would time out.
    publisher = make_publisher([hub.url], backoff=30)
    publisher.publish(TOPICS)

    assert publisher.flush(5)
    assert len(hub.requests) == 2
    assert hub.requests[1].at - hub.requests[0].at >= 0.25
    assert "in 0.30 s" in records(logs, logging.WARNING)[0]


@pytest.mark.parametrize("reply", [400, 404, (302, {"Location": "https://elsewhere.example/"})])
def test_other_answers_are_logged_and_not_retried(start_hub, make_publisher, logs, reply):
    hub = start_hub(reply, 204)
    publisher = make_publisher([hub.url])
    publisher.publish(TOPICS)

    assert publisher.flush(5)
    time.sleep(0.05)  # room for a retry (backoff 0.01) that must not come
    assert len(hub.requests) == 1
    status = reply[0] if isinstance(reply, tuple) else reply
    [error] = records(logs, logging.ERROR)
    assert hub.url in error and f"HTTP {status}" in error and "3 topic(s) dropped" in error
    assert records(logs, logging.WARNING) == []


def test_unreachable_hub_is_given_up_without_holding_up_the_others(start_hub, make_publisher,
                                                                   logs):
    dead = f"http://127.0.0.1:{free_port()}/hub"  # nothing listens there: connection refused
    live = start_hub()
    publisher = make_publisher([dead, live.url], retries=2, backoff=0.2)
    started = time.monotonic()
    publisher.publish(TOPICS)

    assert publisher.flush(5)
    assert time.monotonic() - started >= 0.6  # the dead hub's two retries were waited for
    assert [r.urls for r in live.requests] == [TOPICS]
    assert live.requests[0].at - started < 0.2  # …but not by the live hub
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 2 and all(dead in w for w in warnings)
    [error] = records(logs, logging.ERROR)
    assert dead in error and "3 attempt(s)" in error and "3 topic(s) dropped" in error


def test_publish_returns_at_once_and_flush_waits(start_hub, make_publisher):
    hub = start_hub(delay=1.0)
    publisher = make_publisher([hub.url])
    started = time.monotonic()
    publisher.publish(TOPICS)
    assert time.monotonic() - started < 0.5  # far less than the hub's 1 s
    assert hub.arrived.wait(5)  # the POST is under way: the hub holds it for 1 s
    second = time.monotonic()
    publisher.publish(["https://example.com/feeds/world/rss.xml"])
    assert time.monotonic() - second < 0.5

    assert not publisher.flush(0.2)
    assert publisher.flush(5)
    assert time.monotonic() - started >= 2.0  # two POSTs, one after the other, 1 s each
    assert [r.urls for r in hub.requests] == [TOPICS, ["https://example.com/feeds/world/rss.xml"]]


def test_close_drains_the_queue_then_stops_the_thread(start_hub, make_publisher, logs):
    hub = start_hub()
    publisher = make_publisher([hub.url])
    publisher.publish(TOPICS)
    publisher.close()

    assert [r.urls for r in hub.requests] == [TOPICS]
    assert not publisher.thread.alive
    publisher.publish(["https://example.com/feeds/late.xml"])
    assert publisher.flush(1)
    assert len(hub.requests) == 1
    assert records(logs, logging.WARNING) == [
        "WebSub publisher is closed: 1 topic(s) not announced"]


def test_close_gives_up_a_drain_that_takes_too_long(start_hub, make_publisher, logs):
    hub = start_hub(503)
    publisher = make_publisher([hub.url], backoff=5)
    publisher.publish(TOPICS)
    assert hub.arrived.wait(5)
    started = time.monotonic()
    publisher.close(timeout=0.2)

    assert time.monotonic() - started < 1
    assert not publisher.thread.alive
    assert len(hub.requests) == 1
    [error] = records(logs, logging.ERROR)
    assert hub.url in error and "3 topic(s) dropped" in error


def test_topics_waiting_for_a_held_up_thread_are_bounded(start_hub, make_publisher, logs,
                                                         monkeypatch):
    """A hub that holds the publisher's thread (or a thread gone): what waits for it is at most
    MAX_PENDING topics, the rest not announced and logged, so memory cannot grow without end."""
    monkeypatch.setattr(websub, "MAX_PENDING", 100)
    gate = threading.Event()
    hub = start_hub(gate=gate)
    publisher = make_publisher([hub.url], batch_size=1_000)
    publisher.publish(TOPICS)
    assert hub.arrived.wait(5)  # the thread waits for the hub
    for n in range(3):
        publisher.publish([f"https://example.com/feeds/{n}/{i}.xml" for i in range(80)])
    gate.set()
    assert publisher.flush(5)
    assert [len(r.urls) for r in hub.requests] == [len(TOPICS), 100]
    assert records(logs, logging.ERROR) == [
        "WebSub publisher: 100 topics wait already, 60 more not announced",
        "WebSub publisher: 100 topics wait already, 80 more not announced"]


def test_no_hubs_is_a_no_op():
    threads = threading.active_count()
    publisher = WebSubPublisher(())
    publisher.publish(TOPICS)

    assert threading.active_count() == threads
    assert publisher.flush(0)
    publisher.close()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="not an http"):
        WebSubPublisher(["pubsubhubbub.appspot.com"])
    with pytest.raises(ValueError, match="batch_size"):
        WebSubPublisher([], batch_size=0)
    with pytest.raises(TypeError, match="single string"):
        WebSubPublisher([]).publish(TOPICS[0])


def test_a_refresh_announces_every_changed_feed_on_every_address(start_hub, make_publisher,
                                                                 settings, store, redis_cache):
    """The scheduler's path: new bytes in the cache first, then one topic per changed feed URL
    and address to the hub; unchanged feeds are not announced."""
    hub = start_hub()
    publisher = make_publisher([hub.url])
    refresher = Refresher(FeedBuilder(settings, store, redis_cache), on_changed=publisher.publish)
    refresher.full()
    assert publisher.flush(5)
    hub.requests.clear()
    store.upsert([parse_article({"id": "w1", "url": "/w1", "section": "World", "title": "W",
                                 "published": datetime(2026, 11, 3, tzinfo=UTC).isoformat()},
                                origin=settings.origin, timezone=settings.timezone)])
    report = refresher.incremental()
    assert publisher.flush(5)
    announced = [url for request in hub.requests for url in request.form["hub.url"]]
    assert sorted(announced) == sorted(report.changed_urls)
    expected = {f"{origin}/feeds/{path}{name}" for origin in settings.addresses
                for path in ("", "world/") for name in ("rss.xml", "atom.xml", "feed.json")}
    assert expected <= set(announced)
    assert not any("/news/" in url for url in announced)
