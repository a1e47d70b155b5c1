"""Reach counted where feeds are answered, the fast path and the Flask route alike
(docs/contracts.md "Reach"), without slowing them: a request costs one tuple appended to a
deque. A thread per worker process, about once a second, turns what was seen into a batch (the
UA's family from feedsvc.web.clients, the client's address, the counts) and writes it to the
cache (`ReachCounts.record`, one pipeline); once more when the process exits.

Most requests come from a client already counted that day (a reader polls every few minutes or
hours), so the worker remembers a hash of each (client, feed, address) it has recorded today and
sends only the new ones: a repeat costs no address parsing, no keyed hash and no HyperLogLog
write (bench/reach.py measures both mixes). The memory is forgotten at the UTC day's end, past
KNOWN_LIMIT entries, when the cache is unavailable, and when the day's counts started over in
the cache (its hashing key changed: Redis restarted empty), so no distinct client goes uncounted.

The cache unavailable: the batch is dropped, one WARNING per outage says so, serving goes on.
A client's address and User-Agent stay in this process's memory until the batch is recorded,
where they are hashed (feedsvc.cache.reach); nothing here logs them.
"""

from __future__ import annotations

import atexit
import collections
import datetime
import functools
import itertools
import logging
import operator
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from wsgiref.types import WSGIEnvironment

from feedsvc.cache import CacheUnavailable, ReachBatch, ReachCounts
from feedsvc.cache.reach import DAY_SECONDS, MEASURES
from feedsvc.web.clients import classify
from feedsvc.web.ratelimit import client_address
from feedsvc.web.responses import Answer

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
# Clients remembered as recorded today, per worker: about 70 bytes each (a hash in a set).
KNOWN_LIMIT = 1_000_000
_EPOCH = datetime.date(1970, 1, 1)
# A request as it came, until the flush counts it: day number, section, file name, address,
# User-Agent, REMOTE_ADDR, X-Forwarded-For, status, bytes sent, bytes of the representation.
_Seen = tuple[int, str, str, str, str, str, str, int, int, int]
# What the traffic counts need of it, and who the client was (by feed, address and day).
_Traffic = tuple[int, str, str, str, str, int, int, int]
_Client = tuple[int, str, str, str, str, str, str]
_traffic: Callable[[_Seen], _Traffic] = operator.itemgetter(0, 1, 2, 3, 4, 7, 8, 9)
_client: Callable[[_Seen], _Client] = operator.itemgetter(0, 1, 2, 3, 4, 5, 6)


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
        # appended by request threads, drained by the flush: both atomic, no lock
        self._seen: collections.deque[_Seen] = collections.deque()
        self._flushing = threading.Lock()
        self._known: set[int] = set()  # hash(_Client) of the clients recorded on _known_day
        self._known_day = -1
        self._generations: dict[int, bytes] = {}  # day -> its counts' generation in the cache
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None  # started on the first count
        self._stop = threading.Event()
        self._failing = False
        # a thread does not survive a fork: the child starts its own
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def answered(self, environ: WSGIEnvironment, section: str, filename: str, origin: str,
                 decided: Answer) -> None:
        """Count a feed document answered with `decided` (200 or 304) on address `origin`:
        the request as it came; `flush` makes the counts of them."""
        if self._thread is None:
            self._start()
        get, status = environ.get, decided.status
        self._seen.append((
            int(self.clock() // DAY_SECONDS), section, filename, origin,
            get("HTTP_USER_AGENT", ""), get("REMOTE_ADDR", ""), get("HTTP_X_FORWARDED_FOR", ""),
            status, len(decided.body) if status == 200 and get("REQUEST_METHOD") == "GET" else 0,
            decided.represented))

    def flush(self) -> None:
        """Write what was counted; dropped, with one WARNING per outage, if the cache is
        unavailable."""
        with self._flushing:  # the thread's and an exit's (or a test's) flush, one at a time
            take = self._seen.popleft
            drained = [take() for _ in itertools.repeat(None, len(self._seen))]
            if not drained:
                return
            seen = list(map(_client, drained))
            clients = dict(zip(map(hash, seen), seen, strict=True))  # by hash: one each
            if drained[-1][0] != self._known_day or len(self._known) > KNOWN_LIMIT:
                self._known.clear()  # a new day, or too many to remember
                self._known_day = drained[-1][0]
            fresh = clients.keys() - self._known
            self._known |= fresh
            batches = self._batches(drained, [clients[h] for h in fresh])
            for day in sorted(batches):
                try:
                    generation = self.counts.record(batches[day])
                    if self._started_over(day, generation):
                        # the clients remembered were counted before: count them again
                        self.counts.record(self._clients_batch(day, clients.values()))
                except CacheUnavailable as exc:
                    self._known.clear()  # what was recorded may be lost with the cache
                    if not self._failing:
                        self._failing = True
                        log.warning("reach: the cache is unavailable, counts are dropped until "
                                    "it is back: %s", exc)
                    return
                if self._failing:
                    self._failing = False
                    log.info("reach: the cache is back, counting resumed")

    def _started_over(self, day: int, generation: bytes | None) -> bool:
        """Whether `generation`, the day's counts' as `record` returned it, shows that they
        started over since the last flush; the clients remembered are then forgotten."""
        if generation is None:
            return False
        before = self._generations.get(day)
        self._generations = {d: g for d, g in self._generations.items() if d >= day - 1}
        self._generations[day] = generation
        if before is None or before == generation:
            return False
        self._known.clear()
        return True

    def _batches(self, drained: list[_Seen],
                 fresh: Iterable[_Client]) -> dict[int, ReachBatch]:
        """The counts of `drained` by day, with the clients in `fresh`. Aggregators' counts in
        the order each kind was last seen: one reported later overwrites an earlier one."""
        batches: dict[int, ReachBatch] = {}
        # counted from the newest back, so each kind sits where it was last seen
        traffic = collections.Counter(map(_traffic, reversed(drained)))
        for (day, section, filename, origin, user_agent, status, sent,
             represented), n in reversed(traffic.items()):
            batch = batches.get(day)
            if batch is None:
                batch = batches[day] = ReachBatch(_EPOCH + datetime.timedelta(days=day))
            client = classify(user_agent)
            key = (f"{section}/{filename}" if section else filename, origin, client.family.id)
            counts = batch.traffic.get(key)
            if counts is None:
                counts = batch.traffic[key] = [0] * len(MEASURES)
            counts[0] += n
            counts[2] += sent * n
            if status == 304:
                counts[1] += n
                counts[3] += represented * n
            if client.subscribers is not None and not client.family.distinct:
                batch.aggregators[client.family.id, client.feed_id, key[0],
                                  origin] = client.subscribers
        if len(batches) == 1:  # the usual flush: not across midnight
            [(day, batch)] = batches.items()
            self._add_clients(batch, fresh)
        else:
            fresh = list(fresh)
            for day, batch in batches.items():
                self._add_clients(batch, [c for c in fresh if c[0] == day])
        return batches

    def _clients_batch(self, day: int, clients: Iterable[_Client]) -> ReachBatch:
        batch = ReachBatch(_EPOCH + datetime.timedelta(days=day))
        self._add_clients(batch, [c for c in clients if c[0] == day])
        return batch

    def _add_clients(self, batch: ReachBatch, clients: Iterable[_Client]) -> None:
        """Add to `batch` the clients of the families counted as distinct readers."""
        trusted, of_batch = self._trusted_proxies, batch.clients
        for _, section, filename, origin, user_agent, peer, forwarded in clients:
            family = classify(user_agent).family
            if family.distinct:
                key = (f"{section}/{filename}" if section else filename, origin, family.id)
                seen = of_batch.get(key)
                if seen is None:
                    seen = of_batch[key] = set()
                seen.add((client_address(peer, forwarded, trusted), user_agent))

    def close(self) -> None:
        """Stop the flushing thread and write what is left."""
        self._stop.set()
        self.flush()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="reach-flush", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def _forked(self) -> None:
        """In a forked child: the parent's counts are the parent's to write, its locks may have
        been held by another of its threads, and its flushing thread is not here."""
        self._start_lock = threading.Lock()
        self._flushing = threading.Lock()
        self._seen = collections.deque()
        self._known = set()
        self._generations = {}
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
