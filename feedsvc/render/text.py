"""Text safety: whatever an article contains, what we emit stays well-formed and harmless."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import nh3

from feedsvc.model import lower_origin

# XML 1.0 forbids C0 controls other than tab/LF/CR, lone surrogates and U+FFFE/U+FFFF; lxml
# refuses them, so one such byte in one article would otherwise fail a whole feed.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
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


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry."""
    return _XML_ILLEGAL.sub("", text)


def sanitize_html(fragment: str, base_url: str) -> str:
    """Body HTML made safe for any reader: an allow-list of tags and attributes (no script,
    style, iframe, event handlers; only http(s)/mailto URLs) with every URL made absolute
    against the article's `base_url`, its scheme and host in lower case."""

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in _URL_ATTRIBUTES:
            return lower_origin(urljoin(base_url, value.strip()))
        return value

    return nh3.clean(
        xml_safe(fragment),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=absolute,
        link_rel="noopener",
    )


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment on one line: block boundaries become spaces."""
    stripped = nh3.clean(
        _BLOCK_TAG.sub(" ", fragment), tags=set(), clean_content_tags={"script", "style"}
    )
    return _SPACES.sub(" ", html.unescape(stripped)).strip()


def summary_from_body(sanitized_html: str, limit: int) -> str:
    """A teaser: the body's first paragraph with text (else all its text), leaving out photo
    captions."""
    text = _CAPTION.sub(" ", sanitized_html)
    first = next((p for p in map(plain_text, _PARAGRAPH.findall(text)) if p), None)
    return shorten(first or plain_text(text), limit)


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut.rstrip(" ,;:.") + "…"
