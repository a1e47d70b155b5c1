"""Reach counted where feeds are answered, the fast path and the Flask route alike
(docs/contracts.md "Reach"), without slowing them. Most requests come from a client already
counted that day (a reader polls every few minutes or hours), so each worker remembers a hash of
every (client, feed, address) it has recorded today: such a request costs a hash, a set lookup
and one dictionary update under a lock, where requests of a kind add up. A client not recorded
yet is appended to a deque as it came. A thread per worker process, about once a second, turns
both into a batch (the UA's family from feedsvc.web.clients, the new clients' addresses, the
counts) and writes it to the cache (`ReachCounts.record`); once more when the process exits.
bench/reach.py measures the cost, with one request in ten from a new client and with every one.

The memory of clients is forgotten at the UTC day's end, past KNOWN_LIMIT entries, when the
cache is unavailable, and when the day's counts started over in the cache (its hashing key
changed: Redis restarted empty): each client is then recorded again at its next request.

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
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from wsgiref.types import WSGIEnvironment

from feedsvc.cache import CacheUnavailable, ReachBatch, ReachCounts
from feedsvc.cache.reach import DAY_SECONDS, MEASURES
from feedsvc.supervised import Supervised
from feedsvc.web.clients import classify
from feedsvc.web.ratelimit import client_address, forwarded_tail
from feedsvc.web.responses import Answer

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
# Clients remembered as recorded today, per worker: about 70 bytes each (a hash in a set).
KNOWN_LIMIT = 500_000
# New clients kept for the next flush, per worker: beyond, the oldest are not recorded (a flood
# of never-seen clients, or a flush held up, must not grow memory without end).
NEW_LIMIT = 50_000
# Kinds of request counted between two flushes, per worker: beyond, a new kind waits for the
# next flush uncounted (each holds its User-Agent).
KINDS_LIMIT = 50_000
# Characters of a User-Agent kept: real ones are a few hundred; a client may send 20 KB. Of
# X-Forwarded-For, the tail client_address reads (feedsvc.web.ratelimit.MAX_FORWARDED).
MAX_USER_AGENT = 1024
_EPOCH = datetime.date(1970, 1, 1)
# A kind of request, counted until the flush: day number, section, file name, address,
# User-Agent, status, bytes sent, bytes of the representation.
_Traffic = tuple[int, str, str, str, str, int, int, int]
# A client as it came, until the flush records it: day number, section, file name, address,
# User-Agent, REMOTE_ADDR, X-Forwarded-For.
_Client = tuple[int, str, str, str, str, str, str]


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
        self._traffic: dict[_Traffic, int] = {}  # requests of each kind, under _lock
        self._lock = threading.Lock()
        # clients not recorded yet: appended by request threads, drained by the flush (both
        # atomic, no lock); a client may be in twice until the flush records it
        self._new: collections.deque[_Client] = collections.deque(maxlen=NEW_LIMIT)
        self._flushing = threading.Lock()
        self._known: set[int] = set()  # hash(_Client) of the clients recorded on _known_day
        self._known_day = -1
        self._generations: dict[int, bytes] = {}  # day -> its counts' generation in the cache
        self._start_lock = threading.Lock()
        self._started = False  # the thread is started on the first count
        # a flush that fails unforeseen loses its batch, not the counting after it
        self.thread = Supervised("reach-flush", self._run, pause=interval,
                                 what="a batch could not be counted and is dropped")
        self._failing = False
        # a thread does not survive a fork: the child starts its own
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def answered(self, environ: WSGIEnvironment, section: str, filename: str, origin: str,
                 decided: Answer) -> None:
        """Count a feed document answered with `decided` (200 or 304) on address `origin`;
        a client not recorded yet today is kept for `flush` to record."""
        if not self._started:
            self._start()
        get, status = environ.get, decided.status
        day = int(self.clock() // DAY_SECONDS)
        user_agent = get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT]
        client = (day, section, filename, origin, user_agent, get("REMOTE_ADDR", ""),
                  forwarded_tail(get("HTTP_X_FORWARDED_FOR", "")))
        if hash(client) not in self._known:
            self._new.append(client)
        kind = (day, section, filename, origin, user_agent, status,
                len(decided.body) if status == 200 and get("REQUEST_METHOD") == "GET" else 0,
                decided.represented)
        with self._lock:
            traffic = self._traffic
            if len(traffic) < KINDS_LIMIT or kind in traffic:
                traffic[kind] = traffic.pop(kind, 0) + 1  # to the end: the latest last

    def flush(self) -> None:
        """Write what was counted; dropped, with one WARNING per outage, if the cache is
        unavailable."""
        with self._flushing:  # the thread's and an exit's (or a test's) flush, one at a time
            with self._lock:
                traffic, self._traffic = self._traffic, {}
            take = self._new.popleft
            new = [take() for _ in itertools.repeat(None, len(self._new))]
            if not traffic:
                return
            today = max(kind[0] for kind in traffic)
            if today != self._known_day or len(self._known) > KNOWN_LIMIT:
                self._known = set()  # a new day, or too many to remember
                self._known_day = today
            clients = dict(zip(map(hash, new), new, strict=True))  # by hash: one each
            fresh = clients.keys() - self._known
            self._known |= fresh
            batches = self._batches(traffic, list(map(clients.__getitem__, fresh)))
            for day in sorted(batches):
                try:
                    self._started_over(day, self.counts.record(batches[day]))
                except CacheUnavailable as exc:
                    self._known = set()  # what was recorded may be lost with the cache
                    if not self._failing:
                        self._failing = True
                        log.warning("reach: the cache is unavailable, counts are dropped until "
                                    "it is back: %s", exc)
                    return
                if self._failing:
                    self._failing = False
                    log.info("reach: the cache is back, counting resumed")

    def _started_over(self, day: int, generation: bytes | None) -> None:
        """Forget the clients recorded when `generation`, the day's counts' as `record`
        returned it, shows that they started over since the last flush: each is recorded
        again at its next request."""
        if generation is None:
            return
        before = self._generations.get(day)
        self._generations = {d: g for d, g in self._generations.items() if d >= day - 1}
        self._generations[day] = generation
        if before is not None and before != generation:
            self._known = set()

    def _batches(self, traffic: dict[_Traffic, int],
                 fresh: list[_Client]) -> dict[int, ReachBatch]:
        """The counts of `traffic` by day, with the clients in `fresh`. Aggregators' counts in
        the order each kind was last seen: one reported later overwrites an earlier one."""
        batches: dict[int, ReachBatch] = {}
        for (day, section, filename, origin, user_agent, status, sent,
             represented), n in traffic.items():
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
        for day, batch in batches.items():
            self._add_clients(batch, [c for c in fresh if c[0] == day] if len(batches) > 1
                              else fresh)
        return batches

    def _add_clients(self, batch: ReachBatch, clients: Iterable[_Client]) -> None:
        """Add to `batch` the clients of the families counted as distinct readers."""
        trusted, of_batch = self._trusted_proxies, batch.clients
        sets: dict[tuple[str, str, str, str], set[tuple[str, str]] | None] = {}
        for _, section, filename, origin, user_agent, peer, forwarded in clients:
            kind = (section, filename, origin, user_agent)
            if kind in sets:
                seen = sets[kind]
            else:  # the set this kind of client goes in, None if not counted as distinct
                family = classify(user_agent).family
                key = (f"{section}/{filename}" if section else filename, origin, family.id)
                seen = sets[kind] = of_batch.setdefault(key, set()) if family.distinct else None
            if seen is not None:
                seen.add((client_address(peer, forwarded, trusted), user_agent))

    def close(self) -> None:
        """Stop the flushing thread and write what is left."""
        self.thread.stop()
        self.flush()

    def _start(self) -> None:
        with self._start_lock:
            if self._started:
                return
            self._started = True
        self.thread.start()
        atexit.register(self.flush)

    def _forked(self) -> None:
        """In a forked child: the parent's counts are the parent's to write, its locks may have
        been held by another of its threads, and its flushing thread is not here."""
        self._start_lock = threading.Lock()
        self._flushing = threading.Lock()
        self._lock = threading.Lock()
        self._traffic = {}
        self._new = collections.deque(maxlen=NEW_LIMIT)
        self._known = set()
        self._generations = {}
        self._started = False

    def _run(self) -> None:
        """Flush until stopped."""
        while not self.thread.stopping.wait(self.interval):
            self.flush()
            self.thread.recovered()
