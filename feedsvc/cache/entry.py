"""A cached feed: its bytes, their compressed forms and validators, all made once at render time.

A cache hit then costs no rendering and no compression; every process that reads the entry
serves the same bytes under the same ETag.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import datetime

import brotli

# Quality 6: within 3 % of quality 9's size on our feeds at a sixth of its time (and faster
# than gzip -9); 10 and 11 cost 50-150x more for 10 % less.
BROTLI_QUALITY = 6


class CacheUnavailable(RuntimeError):
    """The shared cache cannot be reached; callers degrade (render from the store) instead."""


class CacheFull(CacheUnavailable):
    """The cache refused a write for lack of memory (Redis `maxmemory`); nothing of it was
    written. Smaller writes may still fit."""


class LeaseLost(RuntimeError):
    """A write made on the condition that this scheduler still holds the leader lease was
    refused: the lease has expired, been evicted or been taken by another scheduler."""


@dataclass(frozen=True, slots=True)
class Fence:
    """The leader lease as a scheduler took it: Redis key and the token it holds. A write
    fenced by it is applied only while the key still holds that token."""

    key: str
    token: bytes


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
    br: bytes
    etag: str           # strong, quoted, from the bytes
    last_modified: int  # epoch seconds of the newest item change
    content_type: str

    @property
    def size(self) -> int:
        """Bytes held, for in-process memory budgets."""
        return len(self.body) + len(self.gzip) + len(self.br)


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    """A document as rendered, before compression. Compressing is most of what publishing a
    document costs, so a refresh compares this ETag with the cached one and compresses only
    the documents whose bytes changed."""

    body: bytes
    content_type: str
    last_modified: int
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str, last_modified: datetime) -> RenderedFeed:
        return cls(body, content_type, int(last_modified.timestamp()),
                   '"' + hashlib.sha256(body).hexdigest()[:32] + '"')

    def compress(self) -> CachedFeed:
        """The cache entry; gzip's mtime is fixed so equal bodies give equal bytes."""
        return CachedFeed(
            body=self.body,
            # level 6: 0.8 % bigger than 9 on a 120 KB feed, a quarter less time per render
            gzip=gzip.compress(self.body, compresslevel=6, mtime=0),
            br=brotli.compress(self.body, quality=BROTLI_QUALITY),
            etag=self.etag,
            last_modified=self.last_modified,
            content_type=self.content_type,
        )
