"""A per-client rate limit (`web.rate_limit` requests/s, `web.rate_limit_burst`), in front of
everything, the fast path included: too many requests get 429 with Retry-After.

A token bucket per client in this process's memory (feedsvc.tokenbucket): a request costs a
dictionary lookup and a few float operations, no Redis round trip, so the fast path keeps its
speed. The limit is therefore per process: with N web processes (WEB_CONCURRENCY, or several
machines) a client may get up to N times the rate, depending on how its connections are spread.

The client is the peer address (REMOTE_ADDR), or, when the peer is a trusted proxy
(`web.trusted_proxies`), the nearest address in X-Forwarded-For that is not one: the entries
left of it are whatever the client chose to send. IPv6 clients are counted by their /64, the
block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Iterable
from functools import lru_cache
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from feedsvc.tokenbucket import TokenBuckets
from feedsvc.web.metrics import observe

__all__ = ["MAX_FORWARDED", "RateLimit", "TokenBuckets", "client_address", "client_of",
           "forwarded_tail"]
_BODY = b"429 Too Many Requests\n"
_ROUTE = "(rate limited)"  # the metrics' route and address label for refused requests
# Characters of X-Forwarded-For read, from its right end, where the trusted proxies wrote: a
# dozen hops and more; a client may send 64 KB of it, which would then be a bucket's key.
MAX_FORWARDED = 512


@lru_cache(maxsize=4096)
def _ipv6_subscriber(address: str) -> str:
    """An IPv6 address's /64 (as it came, if unparsable)."""
    try:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    except ValueError:
        return address


def client_of(environ: WSGIEnvironment, trusted_proxies: frozenset[str]) -> str:
    """Who the request is counted against (see the module's docstring)."""
    return client_address(environ.get("REMOTE_ADDR", ""),
                          environ.get("HTTP_X_FORWARDED_FOR", ""), trusted_proxies)


def forwarded_tail(forwarded: str) -> str:
    """The part of an X-Forwarded-For value that `client_address` reads: its last
    MAX_FORWARDED characters, whole hops only."""
    if len(forwarded) <= MAX_FORWARDED:
        return forwarded
    return forwarded[-MAX_FORWARDED:].partition(",")[2]


def client_address(peer: str, forwarded: str, trusted_proxies: frozenset[str]) -> str:
    """`client_of` a request from `peer` with X-Forwarded-For `forwarded`."""
    address = peer
    if peer in trusted_proxies:
        forwarded = forwarded_tail(forwarded)
        for hop in reversed(forwarded.split(",")) if "," in forwarded else (forwarded,):
            hop = hop.strip()
            if hop and hop not in trusted_proxies:
                address = hop
                break
    return _ipv6_subscriber(address) if ":" in address else address


class RateLimit:
    """WSGI middleware: 429 with Retry-After (whole seconds) and a short body when the
    client's bucket is empty, else the app."""

    def __init__(self, app: WSGIApplication, buckets: TokenBuckets, trusted_proxies: Iterable[str]):
        self.app = app
        self.buckets = buckets
        self.trusted_proxies = frozenset(trusted_proxies)

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        wait = self.buckets.take(client_of(environ, self.trusted_proxies))
        if not wait:
            return self.app(environ, start_response)
        started = time.perf_counter()
        start_response("429 Too Many Requests", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_BODY))),
            ("Retry-After", str(math.ceil(wait))),
        ])
        body = [] if environ.get("REQUEST_METHOD") == "HEAD" else [_BODY]
        observe(_ROUTE, environ.get("REQUEST_METHOD", ""), 429, started, _ROUTE,
                len(_BODY) if body else 0)
        return body
