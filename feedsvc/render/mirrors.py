"""Each address's copy of a feed, derived from the one rendering on the canonical origin.

A feed differs between addresses (docs/contracts.md) only in its URLs on the canonical origin, which
become the reader's address, and in each item's footer of links to the article on the *other*
addresses. So a feed is rendered once, on the canonical origin, with a marker ending each
item's body where its footer goes; each address's copy is then two regex passes over those
bytes: the canonical origin becomes the address, each marker becomes the item's footer for
that address, escaped as the format escapes text. Identifiers carry no origin (`urn:uuid:`),
so nothing that must stay the same is touched. Three addresses cost one render instead of
three (figures in bench/README.md).

URLs reach the renderers with their scheme and host in lower case (feedsvc.model.lower_origin),
so the canonical origin is matched as the literal it is configured as: a fast search.
"""

from __future__ import annotations

import dataclasses
import html
import re
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from feedsvc.config import Settings
from feedsvc.render.items import Item

# A marker an article cannot forge: it cannot guess this process's nonce. ASCII letters, digits
# and dashes, which no format escapes.
_MARKER = f"feedsvc-footer-{secrets.token_hex(8)}-"
_MARKERS = re.compile(re.escape(_MARKER).encode() + rb"(\d+)-")
# Where an origin ends in a URL, whatever quoting or escaping surrounds it: news.example must
# not match news.example.evil or news.example:8443 (`\` ends it inside JSON strings, `&` inside
# escaped attribute values).
_ORIGIN_END = r"(?=[/?#\"'\s<>&\\]|$)"


class Mirrors:
    """Rewrites documents rendered on `canonical` for each of `addresses` (canonical first)."""

    def __init__(self, canonical: str, addresses: Sequence[str], footer: bool):
        self.canonical = canonical
        self.addresses = tuple(addresses)
        self.footer = footer and len(self.addresses) > 1
        self._origin = re.compile(re.escape(canonical) + _ORIGIN_END)
        self._origin_bytes = re.compile(self._origin.pattern.encode())

    @classmethod
    def of(cls, settings: Settings) -> Mirrors:
        return cls(settings.origin, settings.addresses, settings.mirror_footer)

    def url(self, url: str, address: str) -> str:
        """`url` as served on `address`: on the canonical origin it moves there, else stays."""
        match = self._origin.match(url)
        return address + url[match.end():] if match else url

    def mark(self, items: Sequence[Item]) -> list[Item]:
        """`items` with a marker ending the body of each that gets a footer (an article on the
        canonical origin, with the footer switched on and more than one address)."""
        if not self.footer:
            return list(items)
        return [
            dataclasses.replace(item, content_html=f"{item.content_html}{_MARKER}{n}-")
            if self._origin.match(item.url) else item
            for n, item in enumerate(items)
        ]

    def footers(self, items: Sequence[Item], address: str) -> list[str]:
        """Each item's footer on `address`: links to the article on every other address."""
        if not self.footer:
            return []
        others = [a for a in self.addresses if a != address]
        return [
            '<p class="mirrors">Also available at: ' + " · ".join(
                f'<a href="{html.escape(self.url(item.url, other))}">'
                f"{html.escape(urlsplit(other).netloc)}</a>" for other in others
            ) + "</p>"
            for item in items
        ]

    def copy(self, body: bytes, address: str, footers: Sequence[str],
             escape: Callable[[str], str]) -> bytes:
        """`body`, rendered on the canonical origin from `mark(items)`, as served on `address`;
        `footers` are `footers(items, address)`; `escape` is how the format writes text."""
        if address != self.canonical:
            body = self._origin_bytes.sub(address.encode().replace(b"\\", rb"\\"), body)
        if not self.footer:
            return body
        return _MARKERS.sub(lambda m: escape(footers[int(m.group(1))]).encode(), body)

    def largest_copy(self, body: bytes) -> int:
        """The size of `body`'s largest copy, footers aside: what a size limit must check."""
        growth = max(len(a) for a in self.addresses) - len(self.canonical)
        return len(body) + max(0, growth) * len(self._origin_bytes.findall(body))
