"""URLs as the JSON formats must write them (rewriting them per address is mirrors.py's job)."""

from __future__ import annotations

from urllib.parse import quote

# Characters RFC 3986 allows in a URI (reserved, unreserved and '%' of existing escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def as_uri(url: str) -> str:
    """`url` with non-ASCII and other characters outside RFC 3986 percent-encoded (UTF-8):
    section slugs and article paths may be IRIs, which JSON `uri` fields must not carry raw."""
    return quote(url, safe=_URI_SAFE)
