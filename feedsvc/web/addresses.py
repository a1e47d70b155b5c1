"""Which configured address a request came through (docs/contracts.md: links follow the Host)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from werkzeug.exceptions import BadRequest

from feedsvc.config import Settings

# A DNS name or IP literal with an optional port (RFC 3986 §3.2.2 less the sub-delims no host
# name uses: two Host fields joined by a comma are not one host).
# HTTP/1.0 needs no Host; granian calls it "HTTP/1".
_HTTP_1_0 = frozenset(("HTTP/1.0", "HTTP/1"))
_HOST = re.compile(r"(?:[a-z0-9\-._~%]+|\[[0-9a-f:.]+\])(?::[0-9]{0,5})?", re.IGNORECASE)
# A port a browser or proxy may write out although it is the scheme's default (RFC 9110 §4.2:
# an empty port is the default too).
_DEFAULT_PORTS = frozenset(("", "80", "443"))


def normalised_host(host: str) -> str:
    """`host` as an address's key: lower case, without a default port or the DNS root's
    trailing dot, so `News-Mirror.Example.:443` is the same address as `news-mirror.example`.
    Any other port is kept: a service on another port is not that address."""
    host = host.lower()
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and port in _DEFAULT_PORTS:
        host = name
    return host.removesuffix(".")


class Addresses:
    """Maps a request's Host to the origin its links are written for: a configured address
    (in any spelling of it: `normalised_host`), else the canonical one, so a Host header can
    never put a foreign domain into a feed.
    X-Forwarded-Host counts only when the request comes from a configured trusted proxy."""

    def __init__(self, settings: Settings):
        self.canonical = settings.origin
        self._by_host = {normalised_host(urlsplit(a).netloc): a for a in settings.addresses}
        self._trusted_proxies = frozenset(settings.trusted_proxies)

    def origin(self, environ: Mapping[str, str]) -> str:
        """The origin for this request; 400 when its Host is missing or empty (HTTP/1.1) or
        is not a host (RFC 9112 §3.2). Empty counts as missing: granian passes a missing Host
        as empty, and an empty one is only for targets without an authority, never ours."""
        host = environ.get("HTTP_HOST")
        if environ.get("REMOTE_ADDR") in self._trusted_proxies:
            forwarded = environ.get("HTTP_X_FORWARDED_HOST")
            if forwarded:
                host = forwarded.split(",")[0].strip()
        if not host:
            if environ.get("SERVER_PROTOCOL") in _HTTP_1_0:
                return self.canonical
            raise BadRequest("Host header required")
        origin = self._by_host.get(normalised_host(host))
        if origin is not None:
            return origin
        if not _HOST.fullmatch(host):
            raise BadRequest("invalid Host header")
        return self.canonical
