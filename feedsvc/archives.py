"""RFC 5005 archived feeds (§4): which calendar month an archive document holds and where it is
served, `<feed path>/archive/<YYYY-MM>` (`archive/<YYYY-MM>` for the site).

Months are counted in UTC, not in `site.timezone`: the store keeps UTC and every feed writes its
dates in UTC, so an item dated 2026-11-30T22:00Z is in the 2026-11 archive as a reader sees it;
and an archive's URL and contents are meant never to change, which a later change of the site's
time zone would otherwise do to every month's edges.

Pure, below render and web like feedsvc.urls: the cache-hit path reads `completed` here to serve
an ended month as immutable without loading anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime

# Archives are feeds for readers to back-fill from: RSS and Atom, the formats RFC 5005 covers.
ARCHIVE_FORMATS = ("rss.xml", "atom.xml")
_ARCHIVE_PATH = re.compile(r"(?:(?P<feed>.+)/)?archive/(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def of(cls, when: datetime) -> Month:
        utc = when.astimezone(UTC)
        return cls(utc.year, utc.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The start of the next month. December 9999 has none a datetime can hold: it ends
        at the last instant one can (ingest bounds dates below it, but a store may hold an
        article dated then from before, and a refresh must not die on it)."""
        if self.year == MAXYEAR and self.month == 12:
            return datetime.max.replace(tzinfo=UTC)
        following = Month(self.year + 1, 1) if self.month == 12 else Month(self.year,
                                                                           self.month + 1)
        return following.start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def archive_path(feed: str, month: Month) -> str:
    """Where the archive of `feed` ('' = the site) for `month` is, as a feed path."""
    return f"{feed}/archive/{month}" if feed else f"archive/{month}"


def parse_archive_path(path: str) -> tuple[str, Month] | None:
    """(feed path, month) of an archive's path; None when `path` is not one (a bad month
    too: `2026-13`, `2026-1`). Years end at 9998, so every month has an end."""
    match = _ARCHIVE_PATH.fullmatch(path)
    if match is None:
        return None
    year, month = int(match["year"]), int(match["month"])
    if not (1 <= year <= 9998 and 1 <= month <= 12):
        return None
    return match["feed"] or "", Month(year, month)


def completed(path: str, now: datetime | None = None) -> bool:
    """Whether `path` is the archive of a month that has ended: its document no longer
    changes with time (only an edit of one of its old articles changes it)."""
    parsed = parse_archive_path(path)
    return parsed is not None and parsed[1].end <= (now or datetime.now(UTC))
