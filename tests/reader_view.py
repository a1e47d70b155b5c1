"""What a feed reader does with our documents: which fields it renders as HTML, whether that
HTML could run anything, and the plain text it shows for a title or summary."""

from __future__ import annotations

import html
import json
import re

import lxml.html
from lxml import etree

# What no reader may receive in a field it renders as HTML.
EXECUTABLE_TAGS = {"script", "style", "iframe", "object", "embed", "frame", "frameset", "base",
                   "form", "link", "meta", "svg", "math"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "background", "poster"}
SAFE_SCHEMES = ("http:", "https:", "mailto:")

# The documented normalisation of publisher text (README, "What the feeds contain"): characters
# XML cannot carry (C0 controls but tab/LF/CR, lone surrogates), C1 controls, Unicode
# noncharacters and U+FFFD are removed; leading and trailing white space is dropped.
_UNSHOWABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffd"
    + "".join(f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000,
                                                                                 0x10000))
    + "]"
)


def shown_text(text: str) -> str:
    """The text a reader should show for `text` as the publisher wrote it."""
    return _UNSHOWABLE.sub("", text).strip()


def reader_text(detail) -> str:
    """The plain text of a feedparser text construct (`entry.title_detail` and the like):
    feedparser hands HTML-typed values over as HTML, which a reader shows unescaped."""
    return html.unescape(detail.value) if detail.type == "text/html" else detail.value


_ATOM = "{http://www.w3.org/2005/Atom}"
_RSS_HTML = ("channel/title", "channel/description", "channel/item/title",
             "channel/item/description",
             "channel/item/{http://purl.org/rss/1.0/modules/content/}encoded",
             "channel/item/{http://search.yahoo.com/mrss/}content/"
             "{http://search.yahoo.com/mrss/}description[@type='html']")


def html_fields(filename: str, body: bytes) -> list[str]:
    """The fields of a document that some reader renders as HTML: in RSS the titles and
    descriptions (readers sniff titles for markup), content:encoded and Media RSS descriptions
    typed html; in Atom every text
    construct typed html; in JSON Feed `content_html`. Roku has none."""
    if filename == "rss.xml":
        root = etree.fromstring(body)
        return [e.text or "" for path in _RSS_HTML for e in root.iterfind(path)]
    if filename == "atom.xml":
        root = etree.fromstring(body)
        return [e.text or "" for e in root.iter() if e.get("type") == "html"]
    if filename == "feed.json":
        return [item["content_html"] for item in json.loads(body)["items"]]
    return []


def assert_nothing_executable(fragment: str, where: object = "") -> None:
    """`fragment`, parsed as a browser parses HTML, holds no element that runs or loads
    anything of its own, no event handler and no URL outside http(s)/mailto."""
    if not fragment.strip():
        return
    for element in lxml.html.fragments_fromstring(f"<div>{fragment}</div>")[0].iter():
        if not isinstance(element.tag, str):
            continue  # a comment
        assert element.tag.lower() not in EXECUTABLE_TAGS, (where, element.tag, fragment)
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (where, name, fragment)
            assert name.lower() != "style", (where, name, fragment)
            if name.lower() in URL_ATTRIBUTES:
                scheme = value.strip().lower()
                assert scheme.startswith(SAFE_SCHEMES) or ":" not in scheme.split("/")[0], (
                    where, name, value)
