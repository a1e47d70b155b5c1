"""The one place HTTP caching is decided: validators, 304s, content coding, cache headers.

Each entry has three representations, identity, gzip and br, compressed at render time; each
has its own strong ETag (the identity tag with `-gzip`/`-br` inside the quotes) since their
bytes differ. A conditional request naming the tag of any representation the client accepts
gets a 304 carrying that tag, so a cache revalidates the copy it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache

from flask import Response
from werkzeug.exceptions import NotAcceptable

from feedsvc.cache import CachedFeed
from feedsvc.config import Settings
from feedsvc.web.headers import ANY_TAG, acceptable_codings, entity_tags, http_date


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """The headers every cached document gets, fixed by the configuration."""

    cache_control: str
    hubs: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> CachePolicy:
        # Fresh for one refresh interval; a cache may then serve the old copy while it
        # revalidates (another interval) and, if we fail, for up to a day.
        interval = settings.refresh_interval
        return cls(f"public, max-age={interval}, stale-while-revalidate={interval}, "
                   "stale-if-error=86400", settings.websub_hubs)

    def links(self, self_url: str) -> str:
        """The WebSub discovery links (RFC 8288) of a feed served at `self_url`."""
        return ", ".join([*(f'<{hub}>; rel="hub"' for hub in self.hubs),
                          f'<{self_url}>; rel="self"'])


def _etag(entry: CachedFeed, coding: str) -> str:
    return entry.etag if coding == "identity" else f'{entry.etag[:-1]}-{coding}"'


def _bytes(entry: CachedFeed, coding: str) -> bytes:
    return entry.body if coding == "identity" else getattr(entry, coding)


@lru_cache(maxsize=4096)
def _http_date(epoch: int) -> str:
    return formatdate(epoch, usegmt=True)


def _not_modified(environ: Mapping[str, str], entry: CachedFeed,
                  codings: tuple[str, ...]) -> str | None:
    """The coding of the representation the client already holds, if it is current (RFC 9110
    §13.1.1-2: If-Modified-Since counts only without If-None-Match)."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = entity_tags(if_none_match)
        if ANY_TAG in tags:
            return codings[0]
        return next((c for c in codings if _etag(entry, c)[1:-1] in tags), None)
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since is not None:
        date = http_date(since)
        if date is not None and entry.last_modified <= date:
            return codings[0]
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send for a cached document: status, headers and the bytes (none for a 304)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    represented: int  # bytes of the representation: the body sent, or the one a 304 stands for


def answer(environ: Mapping[str, str], entry: CachedFeed, policy: CachePolicy,
           self_url: str | None = None) -> Answer:
    """A 200 or 304 for `entry`, its bytes served as cached, never re-encoded here; WebSub
    Link headers when hubs are configured and the document is a feed at `self_url`. 406 when
    the client accepts none of the codings we have."""
    codings = acceptable_codings(environ.get("HTTP_ACCEPT_ENCODING"))
    if not codings:
        raise NotAcceptable()
    held = _not_modified(environ, entry, codings)
    coding = held or codings[0]
    headers = [
        ("ETag", _etag(entry, coding)),
        ("Cache-Control", policy.cache_control),
        ("Vary", "Accept-Encoding"),
        ("Access-Control-Allow-Origin", "*"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if self_url is not None and policy.hubs:
        headers.append(("Link", policy.links(self_url)))
    if held is not None:  # RFC 9110 §15.4.5: the validators and caching headers, no entity
        return Answer(304, headers, b"", len(_bytes(entry, held)))
    headers.append(("Last-Modified", _http_date(entry.last_modified)))
    headers.append(("Content-Type", entry.content_type))
    if coding != "identity":
        headers.append(("Content-Encoding", coding))
    body = _bytes(entry, coding)
    return Answer(200, headers, body, len(body))


def feed_response(environ: Mapping[str, str], entry: CachedFeed, policy: CachePolicy,
                  self_url: str | None = None) -> Response:
    """`answer` as a Flask response."""
    return flask_response(answer(environ, entry, policy, self_url))


def flask_response(decided: Answer) -> Response:
    return Response(decided.body if decided.status == 200 else None, status=decided.status,
                    headers=decided.headers)
