"""Token buckets per key, in this process's memory: the web's per-client rate limit
(feedsvc.web.ratelimit) and the ingest API's per-token one (feedsvc.ingest.api) share them.

A request costs a dictionary lookup and a few float operations, no Redis round trip. At most
`max_clients` buckets are kept, the least recently seen evicted first; an evicted key starts
again with a full bucket, as it would after being idle anyway.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 100_000  # about 270 bytes each with its key (tracemalloc): 27 MB at most


class TokenBuckets:
    """`rate` tokens a second per client, up to `burst`; a request takes one."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # client: [tokens, at]
        self._lock = threading.Lock()  # the server runs the app in several threads

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float:
        """0 when `client` may make a request now (a token is taken), else the seconds until
        it may."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._buckets.popitem(last=False)
                bucket = self._buckets[client] = [float(self.burst), now]
            else:
                self._buckets.move_to_end(client)
                bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] >= 1:
                bucket[0] -= 1
                return 0.0
            return (1 - bucket[0]) / self.rate
