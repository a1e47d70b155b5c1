"""feedgen extensions for what feedgen 1.0 cannot say itself (docs/contracts.md):

- RSS: feed-level `atom:link`s besides `self` (feedgen's RSS keeps only that one): WebSub
  `hub`, and RFC 5005's `current`/`prev-archive`/`next-archive` with `fh:archive` (Appendix B);
  and Media RSS with caption and credit (feedgen's `media` extension knows neither, and
  groups everything);
- Atom: feed-level links of any relation (`hub`, the RFC 5005 ones) and `fh:archive`;
- Atom: entry links with a `rel` (feedgen 1.0 drops `rel`/`type` on entry links, upstream #135),
  so `related` and `enclosure` links are written here; and `type="html"` on the titles and
  subtitle, which feedgen cannot type (they are given to it as HTML, feedsvc.render.feeds).

Each extension reads the `Item` (or the hub list) it was given and writes plain elements.
"""

from __future__ import annotations

from collections.abc import Sequence

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml.etree import Element, SubElement

from feedsvc.render.items import Item, image_type, video_type
from feedsvc.render.text import html_text

MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005


class FeedLinks:
    """What the feed-level extensions write: (relation, href) links, and whether the
    document is an RFC 5005 archive (`fh:archive`)."""

    links: Sequence[tuple[str, str]] = ()
    archive: bool = False


class RssChannel(FeedLinks, BaseExtension):
    """Declares the `media` (and for an archive `fh`) prefix and adds the `<atom:link>`s
    after the self link, then `<fh:archive/>`."""

    def extend_ns(self) -> dict[str, str]:
        return {"media": MEDIA_NS, **({"fh": HISTORY_NS} if self.archive else {})}

    def extend_rss(self, feed: Element) -> Element:
        channel = feed[0]
        anchor = channel.find(f"{{{ATOM_NS}}}link")
        position = channel.index(anchor) + 1 if anchor is not None else len(channel)
        for offset, (rel, href) in enumerate(self.links):
            link = channel.makeelement(f"{{{ATOM_NS}}}link", {"href": href, "rel": rel})
            channel.insert(position + offset, link)
        if self.archive:
            channel.insert(position + len(self.links),
                           channel.makeelement(f"{{{HISTORY_NS}}}archive", {}))
        return feed


class RssItemMedia(BaseEntryExtension):
    """Media RSS for one item: the lead photo with caption and credit, then each video with
    its thumbnail nested (what Roku's RSS parser reads)."""

    item: Item | None = None

    def extend_rss(self, entry: Element) -> Element:
        if self.item is None:
            return entry
        if self.item.images:
            lead = self.item.images[0]
            content = SubElement(entry, f"{{{MEDIA_NS}}}content", _attributes(
                url=lead.url, medium="image", type=image_type(lead),
                width=lead.width, height=lead.height))
            if lead.caption:
                # Plain text typed html, as RSS descriptions are (feedsvc.render.feeds).
                description = SubElement(content, f"{{{MEDIA_NS}}}description", type="html")
                description.text = html_text(lead.caption)
            if lead.credit:
                credit = SubElement(content, f"{{{MEDIA_NS}}}credit")
                credit.text = lead.credit
            SubElement(entry, f"{{{MEDIA_NS}}}thumbnail", url=lead.url)
        for video in self.item.videos:
            content = SubElement(entry, f"{{{MEDIA_NS}}}content", _attributes(
                url=video.url, medium="video", type=video_type(video), duration=video.duration))
            thumbnail = video.thumbnail or (self.item.images[0].url if self.item.images else None)
            if thumbnail:
                SubElement(content, f"{{{MEDIA_NS}}}thumbnail", url=thumbnail)
        return entry


class AtomFeedLinks(FeedLinks, BaseExtension):
    """Feed-level links for Atom, and `<fh:archive/>`. (feedgen writes Atom elements
    unqualified under a default namespace, so the links are too.)"""

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS} if self.archive else {}

    def extend_atom(self, feed: Element) -> Element:
        for rel, href in self.links:
            SubElement(feed, "link", href=href, rel=rel)
        if self.archive:
            SubElement(feed, f"{{{HISTORY_NS}}}archive")
        return feed


class AtomEntryLinks(BaseEntryExtension):
    """`rel="related"` per Read More link and `rel="enclosure"` per photo and video."""

    item: Item | None = None

    def extend_atom(self, entry: Element) -> Element:
        if self.item is None:
            return entry
        for related in self.item.related:
            SubElement(entry, "link", href=related.url, rel="related",
                       title=related.title)
        for image in self.item.images:
            SubElement(entry, "link", _attributes(
                href=image.url, rel="enclosure", type=image_type(image)))
        for video in self.item.videos:
            SubElement(entry, "link", _attributes(
                href=video.url, rel="enclosure", type=video_type(video)))
        return entry


class AtomFeedText(BaseExtension):
    """The feed's title and subtitle are HTML."""

    def extend_atom(self, feed: Element) -> Element:
        for name in ("title", "subtitle"):
            for element in feed.findall(name):
                element.set("type", "html")
        return feed


class AtomEntryText(BaseEntryExtension):
    """The entry's title is HTML."""

    def extend_atom(self, entry: Element) -> Element:
        entry.find("title").set("type", "html")
        return entry


def _attributes(**values: object) -> dict[str, str]:
    """XML attributes from the values that are known."""
    return {k: str(v) for k, v in values.items() if v is not None}
