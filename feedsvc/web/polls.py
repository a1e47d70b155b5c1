"""Which tag and author feeds readers poll: the refresh keeps only those fresh (thousands of
tags cannot all be re-rendered on every change), so the web notes each one it serves.

A hit must stay as cheap as it is: a worker writes a feed's mark to Redis at most once per
`MARK_EVERY` (the first time, then when the last mark is that old), deciding with one lookup in
its own dictionary. The marks need no better resolution: the refresh counts a feed as polled
for `feeds.tag_feed_idle_days`.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from feedsvc.cache import CacheUnavailable

log = logging.getLogger(__name__)
MARK_EVERY = 600.0  # seconds between one worker's marks of one feed
_LABEL_PATHS = ("tag/", "author/")  # feedsvc.model.LABEL_KINDS, as the hit path tests them


class PollRecord(Protocol):
    """Where the marks go (the cache, feedsvc.cache)."""

    def mark_polled(self, path: str, when: float) -> None: ...


class PollMarks:
    def __init__(self, record: PollRecord, every: float = MARK_EVERY):
        self._record = record
        self._every = every
        self._marked: dict[str, float] = {}  # path -> monotonic time of this worker's mark

    def served(self, path: str) -> None:
        """Feed `path` was served (200 or 304): mark it polled if it is a tag's or an
        author's and this worker has not marked it lately. Only feeds that exist get here,
        so the dictionary holds at most one entry per tag and author."""
        if not path.startswith(_LABEL_PATHS):
            return
        now = time.monotonic()
        last = self._marked.get(path)
        if last is not None and now - last < self._every:
            return
        self._marked[path] = now
        try:
            self._record.mark_polled(path, time.time())
        except CacheUnavailable as exc:  # the next request after MARK_EVERY tries again
            log.warning("could not mark %s as polled: %s", path, exc)
