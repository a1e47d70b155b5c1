"""The one place HTTP caching is decided: validators, 304s, content coding, cache headers."""

from __future__ import annotations

from email.utils import formatdate, parsedate_to_datetime

from flask import Request, Response

from feedsvc.cache import CachedFeed

GZIP_SUFFIX = '-gzip"'


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2) against the identity and the gzip variant's tag."""
    if header.strip() == "*":
        return True
    opaque = etag.strip('"')
    for candidate in header.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        if tag in (opaque, opaque + "-gzip"):
            return True
    return False


def _not_modified_since(header: str, last_modified: int) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    return since is not None and last_modified <= since.timestamp()


def feed_response(request: Request, entry: CachedFeed, max_age: int) -> Response:
    """A 200 or 304 for `entry`: the bytes are served as cached, never re-encoded here."""
    use_gzip = request.accept_encodings["gzip"] > 0
    etag = entry.etag[:-1] + GZIP_SUFFIX if use_gzip else entry.etag
    headers = {
        "ETag": etag,
        "Last-Modified": formatdate(entry.last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={max_age}, "
                         f"stale-if-error={max_age * 60}",
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        not_modified = _etag_matches(if_none_match, entry.etag)
    else:
        since = request.headers.get("If-Modified-Since")
        not_modified = since is not None and _not_modified_since(since, entry.last_modified)
    if not_modified:
        return Response(status=304, headers=headers)
    response = Response(entry.gzip if use_gzip else entry.body, headers=headers,
                        content_type=entry.content_type)
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response
