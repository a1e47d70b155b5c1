"""One feed's documents: its items in every format, on every address; and the site's documents
(OPML, index page, address list) on every address.

Each format is rendered once, on the canonical origin; each address's copy is derived from
those bytes (feedsvc.render.mirrors). An item that makes a format fail is logged and left out
of that format instead of failing the feed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence

from feedsvc.config import Settings
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.context import FeedContext, Format
from feedsvc.render.formats import FORMATS, SITE_DOCUMENTS, SiteDocument
from feedsvc.render.items import Item
from feedsvc.render.mirrors import Mirrors

log = logging.getLogger(__name__)


class FeedDocuments:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.mirrors = Mirrors.of(settings)

    def render(self, spec: FeedSpec, items: Sequence[Item],
               filenames: Iterable[str] = FORMATS) -> dict[tuple[str, Format], bytes]:
        """Every document of the feed `spec` with `items` (prepared, newest first), by
        (address, format): in every format, or those named by `filenames`."""
        ctx = FeedContext(spec, self.mirrors.mark(items), self.settings.origin, self.settings,
                          self.mirrors.largest_copy)
        bodies = {FORMATS[name]: _render_without_bad_items(FORMATS[name], ctx)
                  for name in filenames}
        documents = {}
        for address in self.settings.addresses:
            footers = self.mirrors.footers(ctx.items, address)
            for fmt, body in bodies.items():
                documents[address, fmt] = self.mirrors.copy(body, address, footers, fmt.escape)
        return documents

    def render_site(self, feeds: Iterable[FeedSpec]) -> dict[tuple[str, SiteDocument], bytes]:
        """Every site document listing `feeds`, by (address, document)."""
        feeds = list(feeds)
        return {
            (address, document): document.render(feeds, FORMATS.values(), address, self.settings)
            for address in self.settings.addresses for document in SITE_DOCUMENTS.values()
        }


def _render_without_bad_items(fmt: Format, ctx: FeedContext) -> bytes:
    """`ctx` rendered in `fmt`; should an item make that fail, the feed is rendered without the
    items that fail on their own, each logged, instead of failing whole. A feed that fails
    without any item fails whole, at once: the fault is its own (a name it cannot carry), and
    every item would fail beside it."""
    try:
        return fmt.render(ctx)
    except Exception:
        fmt.render(dataclasses.replace(ctx, items=[]))
        log.exception("%s of %r failed; finding the item at fault", fmt.filename, ctx.spec.path)
    good = []
    for item in ctx.items:
        try:
            fmt.render(dataclasses.replace(ctx, items=[item]))
            good.append(item)
        except Exception as exc:
            # %r: the bad value itself may be unprintable (a lone surrogate, say)
            log.error("item %s (%r) left out of %s: %r", item.id, item.url, fmt.filename, exc)
    return fmt.render(dataclasses.replace(ctx, items=good))
