"""Mirror addresses: links on the canonical origin are rewritten to the address a reader used.

IDs are never passed through here; only URLs meant to be followed are.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# Characters RFC 3986 allows in a URI (reserved, unreserved and '%' of existing escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def as_uri(url: str) -> str:
    """`url` with non-ASCII and other characters outside RFC 3986 percent-encoded (UTF-8):
    section slugs and article paths may be IRIs, which JSON `uri` fields must not carry raw."""
    return quote(url, safe=_URI_SAFE)


class Rebase:
    """Rewrites URLs on `canonical` to `target` (both `scheme://host[:port]` origins)."""

    def __init__(self, canonical: str, target: str):
        self.canonical = canonical
        self.target = target
        # The origin must end where a URL's authority ends: news.example must not match
        # news.example.evil or news.example:8443.
        self._origin = re.compile(re.escape(canonical) + r"(?=[/?#\"'\s<>]|$)", re.IGNORECASE)

    @property
    def identity(self) -> bool:
        return self.canonical == self.target

    def url(self, url: str) -> str:
        if self.identity:
            return url
        match = self._origin.match(url)
        return self.target + url[match.end():] if match else url

    def html(self, fragment: str) -> str:
        return fragment if self.identity else self._origin.sub(self.target, fragment)
