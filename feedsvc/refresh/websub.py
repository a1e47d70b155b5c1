"""Tells WebSub hubs that feeds changed, so that subscribers fetch them at once instead of polling.

Every address of the site has its own feed URLs, each a topic of its own. When new feed bytes are
in the cache, their topics are announced to each hub the way hubs expect (the W3C recommendation
leaves the publisher-to-hub step to them; this is the PubSubHubbub 0.4 convention): a form-encoded
POST of ``hub.mode=publish`` with every topic as a ``hub.url`` (repeatable on Google's hub and
Superfeedr) and as a ``hub.topic`` (for hubs that read that name).

Hubs are remote and fail, so nothing here runs on the caller's thread: `publish` only queues. One
daemon thread batches whatever was queued while it was busy, duplicates removed, and keeps every
(hub, batch) delivery on a schedule of its own. A retry waits out its backoff on that schedule, not
in a sleep, so a failing hub holds the others up by its own requests alone (each bounded by the
timeout), never by its backoff.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from feedsvc.supervised import Supervised

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0
"""Longest wait before a retry, whatever the backoff or the hub's Retry-After header says."""
MAX_PENDING = 100_000
"""Topics waiting to be batched, at most: the feed URLs of a large site, each once; beyond,
a thread held up (or gone) must not grow memory further, and new topics are not announced."""


@dataclass(frozen=True, slots=True, order=True)
class _Delivery:
    """One batch of topics for one hub, due at `due` (monotonic clock); `seq` breaks ties."""

    due: float
    seq: int
    hub: str = dataclasses.field(compare=False)
    topics: tuple[str, ...] = dataclasses.field(compare=False)
    attempt: int = dataclasses.field(default=0, compare=False)


def _form(topics: tuple[str, ...]) -> list[tuple[str, str]]:
    return [("hub.mode", "publish"), *(("hub.url", t) for t in topics),
            *(("hub.topic", t) for t in topics)]


def _retry_after(response: requests.Response) -> float | None:
    """The seconds of the response's Retry-After header, if it has a valid one."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None  # also rejects NaN


class WebSubPublisher:
    """Announces changed topics to WebSub hubs from a background thread.

    `publish` returns at once. Each hub gets one POST per batch of at most `batch_size` topics;
    a connection error, a timeout, a 5xx or a 429 is retried `retries` times, after
    ``backoff * 2**attempt`` seconds or the hub's Retry-After (at most `MAX_RETRY_DELAY`); any
    other answer but a 2xx (redirects included: they are not followed) is logged and not retried.
    With no hubs, every method does nothing.
    """

    def __init__(self, hubs: Sequence[str], *, timeout: float = 5.0, retries: int = 4,
                 backoff: float = 1.0, batch_size: int = 50,
                 session: requests.Session | None = None) -> None:
        for hub in hubs:
            parts = urlsplit(hub)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"WebSub hub {hub!r} is not an http(s) URL")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._hubs = tuple(dict.fromkeys(hubs))
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._batch_size = batch_size
        self._own_session = session is None
        self._session = requests.Session() if session is None else session
        self._cond = threading.Condition()
        self._pending: dict[str, None] = {}  # topics not batched yet: deduplicated, in order
        self._scheduled: list[_Delivery] = []  # a heap, soonest due first
        self._in_flight = False
        self._closed = False  # no more topics taken; the thread ends once idle
        self._abandoned = False  # the drain took too long: the thread drops the rest and ends
        self._seq = itertools.count()
        self.thread: Supervised | None = None
        if self._hubs:  # a delivery that fails unforeseen is dropped, not the ones after it
            self.thread = Supervised("websub-publisher", self._run,
                                     what="a delivery could not be made and is dropped")
            self.thread.start()

    def publish(self, topics: Iterable[str]) -> None:
        """Queues `topics` for every hub and returns at once; a topic still waiting in the queue
        is not queued twice."""
        if isinstance(topics, str):
            raise TypeError("publish() takes an iterable of topic URLs, not a single string")
        if not self._hubs:
            return
        topics = list(topics)
        with self._cond:
            if self._closed:
                log.warning("WebSub publisher is closed: %d topic(s) not announced", len(topics))
                return
            room = MAX_PENDING - len(self._pending)
            self._pending.update(dict.fromkeys(topics[:max(0, room)]))
            if len(topics) > room:
                log.error("WebSub publisher: %d topics wait already, %d more not announced",
                          MAX_PENDING, len(topics) - max(0, room))
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until the publisher is idle: everything queued delivered or given up. False if
        `timeout` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Takes no more topics, drains the queue for up to `timeout` seconds, then stops the
        thread; whatever is still undelivered by then is dropped, and logged."""
        if self.thread is None:
            return
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if not self.flush(timeout):
            with self._cond:
                self._abandoned = True
                self._cond.notify_all()
        # A request under way when the drain was abandoned ends within its own timeout.
        self.thread.stop(self._timeout)
        if self._own_session:
            self._session.close()

    def _idle(self) -> bool:
        return not (self._pending or self._scheduled or self._in_flight)

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            retry_in = None
            try:
                retry_in = self._attempt(delivery)
            finally:  # not in flight, even if the attempt failed unforeseen
                with self._cond:
                    self._in_flight = False
                    if retry_in is not None:
                        heapq.heappush(self._scheduled, dataclasses.replace(
                            delivery, due=time.monotonic() + retry_in, seq=next(self._seq),
                            attempt=delivery.attempt + 1))
                    self._cond.notify_all()

    def _next(self) -> _Delivery | None:
        """Waits for the next delivery due and marks it in flight; None once the thread is to
        end."""
        with self._cond:
            while True:
                self._batch_pending()
                if self._abandoned:
                    self._drop_all()
                    return None
                now = time.monotonic()
                if self._scheduled and self._scheduled[0].due <= now:
                    self._in_flight = True
                    return heapq.heappop(self._scheduled)
                if self._closed and not self._scheduled:
                    return None
                self._cond.wait(self._scheduled[0].due - now if self._scheduled else None)

    def _batch_pending(self) -> None:
        """Turns the queued topics into one delivery per hub per batch, all due now."""
        topics = list(self._pending)
        self._pending.clear()
        now = time.monotonic()
        for start in range(0, len(topics), self._batch_size):
            batch = tuple(topics[start:start + self._batch_size])
            for hub in self._hubs:
                heapq.heappush(self._scheduled, _Delivery(now, next(self._seq), hub, batch))

    def _drop_all(self) -> None:
        for delivery in self._scheduled:
            log.error("WebSub publisher closed before hub %s was told: %d topic(s) dropped",
                      delivery.hub, len(delivery.topics))
        self._scheduled.clear()
        self._cond.notify_all()

    def _attempt(self, delivery: _Delivery) -> float | None:
        """POSTs `delivery` to its hub; the seconds to wait before retrying it, or None when it
        is done with (delivered, refused or given up)."""
        hub, count = delivery.hub, len(delivery.topics)
        try:
            response = self._session.post(hub, data=_form(delivery.topics),
                                          timeout=self._timeout, allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            problem, retry_after = f"{type(exc).__name__}: {exc}", None
        except Exception:
            log.exception("WebSub hub %s cannot be notified: %d topic(s) dropped", hub, count)
            return None
        else:
            status = response.status_code
            if 200 <= status < 300:
                log.info("WebSub hub %s notified of %d topic(s)", hub, count)
                return None
            if status != 429 and status < 500:
                detail = response.headers.get("Location") or response.text[:200].strip()
                log.error("WebSub hub %s refused the notification with HTTP %d %s (%s): "
                          "%d topic(s) dropped", hub, status, response.reason, detail, count)
                return None
            problem, retry_after = f"HTTP {status} {response.reason}", _retry_after(response)
        if delivery.attempt >= self._retries:
            log.error("WebSub hub %s still failing after %d attempt(s) (%s): %d topic(s) dropped",
                      hub, delivery.attempt + 1, problem, count)
            return None
        delay = self._backoff * 2 ** delivery.attempt if retry_after is None else retry_after
        delay = min(delay, MAX_RETRY_DELAY)
        log.warning("WebSub hub %s failed (%s); retry %d of %d in %.2f s",
                    hub, problem, delivery.attempt + 1, self._retries, delay)
        return delay
