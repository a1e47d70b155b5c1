"""The site-wide documents beside the feeds: the OPML list of every feed, the human index page
with autodiscovery links, and the list of addresses. Like feeds, one per address."""

from __future__ import annotations

import json
from collections.abc import Iterable

from jinja2 import Environment, PackageLoader
from lxml import etree

from feedsvc.config import Settings
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.context import Format

# Format titles shown to people, in the order they are listed.
FORMAT_LABELS = {"rss.xml": "RSS", "atom.xml": "Atom", "feed.json": "JSON Feed",
                 "roku.json": "Roku"}
_SUBSCRIBABLE = ("rss.xml", "atom.xml", "feed.json")  # what feed readers take
# An outline's `version`: OPML 2.0 names versions of RSS only ("RSS" for 0.91, 0.92 and 2.0),
# none for Atom or JSON Feed.
_OUTLINE_VERSIONS = {"rss.xml": {"version": "RSS"}}

_TEMPLATES = Environment(loader=PackageLoader("feedsvc.render"), autoescape=True)


def render_opml(feeds: Iterable[FeedSpec], formats: Iterable[Format], origin: str,
                settings: Settings) -> bytes:
    """OPML 2.0 listing every feed in every subscribable format, on `origin`."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = f"{settings.site_title}: feeds"
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(opml, "body")
    chosen = [f for f in formats if f.filename in _SUBSCRIBABLE]
    for spec in feeds:
        for fmt in chosen:
            etree.SubElement(body, "outline", type="rss",
                             **_OUTLINE_VERSIONS.get(fmt.filename, {}),
                             text=f"{spec.title} ({FORMAT_LABELS[fmt.filename]})",
                             title=spec.title, description=spec.description,
                             xmlUrl=spec.feed_url(origin, fmt.filename),
                             htmlUrl=spec.page_url(origin))
    document: bytes = etree.tostring(opml, xml_declaration=True, encoding="UTF-8",
                                     pretty_print=True)
    return document


def render_index(feeds: Iterable[FeedSpec], formats: Iterable[Format], origin: str,
                 settings: Settings) -> bytes:
    """The small page for people: each feed with its formats, autodiscovery links in <head>."""
    formats = list(formats)
    return _TEMPLATES.get_template("index.html").render(
        settings=settings, feeds=list(feeds), formats=formats, origin=origin,
        subscribable=[f for f in formats if f.filename in _SUBSCRIBABLE], labels=FORMAT_LABELS,
        others=[a for a in settings.addresses if a != origin],
    ).encode()


def render_mirrors(settings: Settings) -> bytes:
    """The canonical origin and the alternate addresses (the same on every address)."""
    return json.dumps({"canonical": settings.origin, "alternates": list(settings.mirrors)},
                      indent=2).encode()
