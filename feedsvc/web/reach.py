"""Reach counted where feeds are answered, the fast path and the Flask route alike
(docs/contracts.md "Reach"), without slowing them: a request costs its UA's classification (a
cached lookup, feedsvc.web.clients), a few dictionary updates under a lock, and for a direct
reader one set insertion. A thread per worker process writes the batch to the cache about once
a second (`ReachCounts.record`, one pipeline), and once more when the process exits.

The cache unavailable: the batch is dropped, one WARNING per outage says so, serving goes on.
A client's address and User-Agent stay in this process's memory until the batch is recorded,
where they are hashed (feedsvc.cache.reach); nothing here logs them.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.types import WSGIEnvironment

from feedsvc.cache import CacheUnavailable, ReachBatch, ReachCounts
from feedsvc.cache.reach import DAY_SECONDS, MEASURES
from feedsvc.web.clients import classify
from feedsvc.web.ratelimit import client_of
from feedsvc.web.responses import Answer

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
_EPOCH = datetime.date(1970, 1, 1)


class ReachCounter:
    """One per web process (`Services.reach`). `clock` gives epoch seconds: the UTC day a
    request is counted in."""

    def __init__(self, counts: ReachCounts, trusted_proxies: Iterable[str], *,
                 clock: Callable[[], float] = time.time, interval: float = FLUSH_SECONDS):
        self.counts = counts
        self.clock = clock
        self.interval = interval
        self._trusted_proxies = frozenset(trusted_proxies)
        self._batches: dict[int, ReachBatch] = {}  # by day number: a flush may span midnight
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()
        self._failing = False

    def answered(self, environ: WSGIEnvironment, section: str, filename: str, origin: str,
                 decided: Answer) -> None:
        """Count a feed document answered with `decided` (200 or 304) on address `origin`."""
        if self._pid != os.getpid():  # started lazily: a thread does not survive a fork
            self._start()
        user_agent = environ.get("HTTP_USER_AGENT", "")
        client = classify(user_agent)
        family = client.family
        key = (f"{section}/{filename}" if section else filename, origin, family.id)
        address = client_of(environ, self._trusted_proxies) if family.distinct else ""
        sent = len(decided.body) if decided.status == 200 and environ.get(
            "REQUEST_METHOD") == "GET" else 0
        day = int(self.clock() // DAY_SECONDS)
        with self._lock:
            batch = self._batches.get(day)
            if batch is None:
                batch = self._batches[day] = ReachBatch(_EPOCH + datetime.timedelta(days=day))
            counts = batch.traffic.get(key)
            if counts is None:
                counts = batch.traffic[key] = [0] * len(MEASURES)
            counts[0] += 1
            counts[2] += sent
            if decided.status == 304:
                counts[1] += 1
                counts[3] += decided.represented
            if family.distinct:
                clients = batch.clients.get(key)
                if clients is None:
                    clients = batch.clients[key] = set()
                clients.add((address, user_agent))
            elif client.subscribers is not None:
                batch.aggregators[(family.id, client.feed_id, key[0], origin)] = client.subscribers

    def flush(self) -> None:
        """Write what was counted; dropped, with one WARNING per outage, if the cache is
        unavailable."""
        with self._lock:
            batches, self._batches = self._batches, {}
        for day in sorted(batches):
            try:
                self.counts.record(batches[day])
            except CacheUnavailable as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("reach: the cache is unavailable, counts are dropped until it "
                                "is back: %s", exc)
                return
            if self._failing:
                self._failing = False
                log.info("reach: the cache is back, counting resumed")

    def close(self) -> None:
        """Stop the flushing thread and write what is left."""
        self._stop.set()
        self.flush()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._batches = {}  # a parent's counts are the parent's to write
        threading.Thread(target=self._run, name="reach-flush", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
