"""The failures a refresh survives by being retried (the cache or the store unreachable), told
apart from bugs, and said in one line: they recur on every tick of an outage, and a
traceback each time would bury the log."""

from __future__ import annotations

from feedsvc.cache import CacheUnavailable
from feedsvc.store import StoreUnavailable

OUTAGES = (CacheUnavailable, StoreUnavailable)


def describe_outage(exc: BaseException) -> str | None:
    """'cache unavailable: why' or 'store unavailable: why', on one line; None when `exc` is
    not an outage (a bug, whose traceback is wanted)."""
    if isinstance(exc, CacheUnavailable):
        part = "cache"
    elif isinstance(exc, StoreUnavailable):
        part = "store"  # in the driver's words
    else:
        return None
    return f"{part} unavailable: {' '.join(str(exc).split())}"
