"""What every format renderer receives: one feed, its items placed on one address."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from feedsvc.config import Settings
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.items import Item

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(when: datetime) -> str:
    """`when` in UTC with a `Z`: one spelling for every date, whatever zone it came in."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class FeedContext:
    """One feed as seen from one address: `items` are already placed on `origin`.
    `largest_copy` is the size of a rendering's largest copy on any address, what a format
    with a size limit must check (Roku); a context of one address has the rendering itself."""

    spec: FeedSpec
    items: Sequence[Item]
    origin: str
    settings: Settings
    largest_copy: Callable[[bytes], int] = len

    @property
    def updated(self) -> datetime:
        """Newest item change: the feed's own date, so unchanged data gives unchanged bytes."""
        return max((i.updated for i in self.items), default=EPOCH)

    def feed_url(self, filename: str) -> str:
        return self.spec.feed_url(self.origin, filename)


@dataclass(frozen=True, slots=True)
class Format:
    """A feed format: the file name in URLs, its media type, its renderer, and how it writes a
    string of text (what a mirror's footer is inserted as, feedsvc.render.mirrors)."""

    filename: str
    content_type: str
    render: Callable[[FeedContext], bytes]
    escape: Callable[[str], str]
