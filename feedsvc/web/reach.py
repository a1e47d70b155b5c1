"""Reach counted where feeds are answered, the fast path and the Flask route alike
(docs/contracts.md "Reach"), without slowing them: a request costs one tuple and one dictionary
update under a lock, identical requests adding up in one entry. A thread per worker process,
about once a second, turns what was seen into a batch (the UA's family from feedsvc.web.clients,
the client's address, the counts) and writes it to the cache (`ReachCounts.record`, one
pipeline); once more when the process exits.

The cache unavailable: the batch is dropped, one WARNING per outage says so, serving goes on.
A client's address and User-Agent stay in this process's memory until the batch is recorded,
where they are hashed (feedsvc.cache.reach); nothing here logs them.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import logging
import os
import threading
import time
import weakref
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
# A request as it came, until the flush counts it: section, file name, address, User-Agent,
# REMOTE_ADDR, X-Forwarded-For, status, bytes sent, bytes of the representation.
_Seen = tuple[str, str, str, str, str, str, int, int, int]


def _after_fork(counter: weakref.ref[ReachCounter]) -> None:
    alive = counter()
    if alive is not None:
        alive._forked()


class ReachCounter:
    """One per web process (`Services.reach`). `clock` gives epoch seconds: the UTC day a
    request is counted in."""

    def __init__(self, counts: ReachCounts, trusted_proxies: Iterable[str], *,
                 clock: Callable[[], float] = time.time, interval: float = FLUSH_SECONDS):
        self.counts = counts
        self.clock = clock
        self.interval = interval
        self._trusted_proxies = frozenset(trusted_proxies)
        self._seen: dict[int, dict[_Seen, int]] = {}  # by day number: a flush may span midnight
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # started on the first count
        self._stop = threading.Event()
        self._failing = False
        # a thread does not survive a fork: the child starts its own
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def answered(self, environ: WSGIEnvironment, section: str, filename: str, origin: str,
                 decided: Answer) -> None:
        """Count a feed document answered with `decided` (200 or 304) on address `origin`:
        the request as it came, one more of its kind; `flush` makes the counts of them."""
        if self._thread is None:
            self._start()
        sent = len(decided.body) if decided.status == 200 and environ.get(
            "REQUEST_METHOD") == "GET" else 0
        seen = (section, filename, origin, environ.get("HTTP_USER_AGENT", ""),
                environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR", ""),
                decided.status, sent, decided.represented)
        day = int(self.clock() // DAY_SECONDS)
        with self._lock:
            today = self._seen.get(day)
            if today is None:
                today = self._seen[day] = {}
            today[seen] = today.pop(seen, 0) + 1  # to the end: the latest last

    def flush(self) -> None:
        """Write what was counted; dropped, with one WARNING per outage, if the cache is
        unavailable."""
        with self._lock:
            seen, self._seen = self._seen, {}
        for day in sorted(seen):
            try:
                self.counts.record(self._batch(day, seen[day]))
            except CacheUnavailable as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("reach: the cache is unavailable, counts are dropped until it "
                                "is back: %s", exc)
                return
            if self._failing:
                self._failing = False
                log.info("reach: the cache is back, counting resumed")

    def _batch(self, day: int, seen: dict[_Seen, int]) -> ReachBatch:
        """The counts of what was seen on `day`, in the order each kind was last seen: a
        count an aggregator reported later overwrites an earlier one."""
        batch = ReachBatch(_EPOCH + datetime.timedelta(days=day))
        for (section, filename, origin, user_agent, peer, forwarded, status, sent,
             represented), n in seen.items():
            client = classify(user_agent)
            family = client.family
            key = (f"{section}/{filename}" if section else filename, origin, family.id)
            counts = batch.traffic.get(key)
            if counts is None:
                counts = batch.traffic[key] = [0] * len(MEASURES)
            counts[0] += n
            counts[2] += sent * n
            if status == 304:
                counts[1] += n
                counts[3] += represented * n
            if family.distinct:
                address = client_of({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded},
                                    self._trusted_proxies)
                batch.clients.setdefault(key, set()).add((address, user_agent))
            elif client.subscribers is not None:
                batch.aggregators[family.id, client.feed_id, key[0], origin] = client.subscribers
        return batch

    def close(self) -> None:
        """Stop the flushing thread and write what is left."""
        self._stop.set()
        self.flush()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="reach-flush", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def _forked(self) -> None:
        """In a forked child: the parent's counts are the parent's to write, its lock may have
        been held by another of its threads, and its flushing thread is not here."""
        self._lock = threading.Lock()
        self._seen = {}
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
