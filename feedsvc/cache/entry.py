"""A cached feed: its bytes, their gzip form and validators, all computed once at render time."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import datetime


class CacheUnavailable(RuntimeError):
    """The shared cache cannot be reached; callers degrade (render from the store) instead."""


@dataclass(frozen=True, slots=True)
class FeedKey:
    """Which document: the feed's section path ('' = site), the format's file name, the
    address (origin) it was rendered for."""

    path: str
    filename: str
    origin: str

    def __str__(self) -> str:
        return f"{self.origin}|{self.path}|{self.filename}"


@dataclass(frozen=True, slots=True)
class CachedFeed:
    body: bytes
    gzip: bytes
    etag: str           # strong, quoted, from the bytes
    last_modified: int  # epoch seconds of the newest item change
    content_type: str


def make_entry(body: bytes, content_type: str, last_modified: datetime) -> CachedFeed:
    """Compress and fingerprint `body`; gzip's mtime is fixed so equal bodies give equal bytes."""
    return CachedFeed(
        body=body,
        gzip=gzip.compress(body, compresslevel=9, mtime=0),
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        last_modified=int(last_modified.timestamp()),
        content_type=content_type,
    )
