"""Text safety: whatever an article contains, what we emit stays well-formed and harmless."""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import urljoin

import nh3

from feedsvc.characters import showable
from feedsvc.model import lower_origin, shorten

log = logging.getLogger(__name__)

_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|figure|figcaption|blockquote|tr|td)\b[^>]*>", re.IGNORECASE
)
_SPACES = re.compile(r"\s+")
# Photo captions: figures, and the caption paragraphs of pages that kept no image URL.
_CAPTION = re.compile(r"<figure\b.*?</figure>|<p class=\"caption\">.*?</p>",
                      re.IGNORECASE | re.DOTALL)
_PARAGRAPH = re.compile(r"<p\b.*?</p>", re.IGNORECASE | re.DOTALL)

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "time", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "*": {"lang", "dir", "class"},
}
_URL_ATTRIBUTES = {("a", "href"), ("img", "src")}


def html_text(text: str) -> str:
    """Plain `text` as HTML that shows exactly that text: for the fields readers render as
    HTML (RSS titles and descriptions, Atom text typed html)."""
    return html.escape(text, quote=False)


def hex_references(xml: bytes) -> bytes:
    """An XML document with `&` and `<` in text and attributes written as hexadecimal character
    references (the same document to any XML parser), as the RSS Profile advises publishers to
    encode them: the W3C validator takes these references as the sign that an escaped `<` or
    entity in a title is meant (CharacterData, ContainsHTML)."""
    return xml.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")


def xml_text(text: str) -> str:
    """`text` as XML character data, escaped as `hex_references` leaves the XML feeds."""
    return text.replace("&", "&#x26;").replace("<", "&#x3C;").replace(">", "&gt;")


def label(text: str) -> str:
    """A short label (an author's name, a tag, a photo credit, a link title) on one line:
    markup in it is the CMS's, not the publisher's words, so the label is its text. (Feeds
    carry these as plain text in places no reader renders as HTML: attributes, dc:creator,
    categories.)"""
    return plain_text(text) if _TAG.search(text) else text.strip()


def sanitize_html(fragment: str, base_url: str) -> str:
    """Body HTML made safe for any reader: an allow-list of tags and attributes (no script,
    style, iframe, event handlers; only http(s)/mailto URLs) with every URL made absolute
    against the article's `base_url`, its scheme and host in lower case; well-formed HTML
    (html5ever's serialisation) with only `showable` characters."""

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in _URL_ATTRIBUTES:
            return lower_origin(urljoin(base_url, value.strip()))
        return value

    kept = showable(fragment)
    cleaned = nh3.clean(
        kept,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=absolute,
        link_rel="noopener",
    )
    # Character references (&#xFFFE;, &#x1;) come out of the parser as the characters they
    # name: filtered again, or the item would break the XML formats.
    safe = showable(cleaned)
    removed = len(fragment) - len(kept), len(cleaned) - len(safe)
    if any(removed):
        log.warning("body of %s: %d characters and %d character references to characters a "
                    "feed cannot carry (controls, noncharacters) removed", base_url, *removed)
    return safe


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment on one line: block boundaries become spaces; references
    to characters a feed cannot carry are dropped."""
    stripped = nh3.clean(
        _BLOCK_TAG.sub(" ", fragment), tags=set(), clean_content_tags={"script", "style"}
    )
    return _SPACES.sub(" ", showable(html.unescape(stripped))).strip()


def summary_from_body(sanitized_html: str, limit: int) -> str:
    """A teaser: the body's first paragraph with text (else all its text), leaving out photo
    captions."""
    text = _CAPTION.sub(" ", sanitized_html)
    first = next((p for p in map(plain_text, _PARAGRAPH.findall(text)) if p), None)
    return shorten(first or plain_text(text), limit)


def excerpt_html(sanitized_html: str, summary: str | None, url: str, limit: int) -> str:
    """What an article's body is in excerpt mode (`feeds.content`): its `summary`, else the
    body's first paragraphs (photo captions left out) up to `limit` characters, the last cut
    at a sentence end; then a "Continue reading" link to `url`. Paragraphs are given as their
    text: a paragraph's markup cannot be cut safely, and none of the body is carried beyond."""
    if summary:
        paragraphs = [summary]
    else:
        texts = [p for p in map(plain_text, _PARAGRAPH.findall(_CAPTION.sub(" ", sanitized_html)))
                 if p] or [plain_text(sanitized_html)]
        paragraphs = []
        used = 0
        for text in texts:
            if used + len(text) <= limit:
                paragraphs.append(text)
                used += len(text)
                continue
            cut = shorten(text, limit - used, sentences=True) if limit - used > 1 else ""
            if cut and (not paragraphs or not cut.endswith("…")):
                paragraphs.append(cut)
            break
    shown = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs if p)
    return f'{shown}<p class="continue"><a href="{html.escape(url)}">Continue reading</a></p>'
