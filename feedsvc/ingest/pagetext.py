"""Reader for the publisher's plain-text page format (docs/contracts.md).

Part of the publisher's archive is text dumps of article pages rather than JSON Lines: a breadcrumb,
the headline, photo captions with "(Photo by …)" credits, paragraphs, "Read More:" markers whose
links were lost, and the site footer. `parse_page` turns such a page into the raw article document
that `parse_article` validates, so both import formats go through the same rules. The page carries
no date, no URL and no id: the caller gives `published`, the URL is built from section and
headline. The id is the caller's (`feedsvc import --id`), else the key the page dump's file name
carries (`000_780554462f59e82e.txt`), so that an edited page updates its article; else a hash of
the content, so that importing the same page again is an update.
"""

from __future__ import annotations

import hashlib
import re
from html import escape
from typing import Any

from feedsvc.ingest.document import MAX_SECTION_DEPTH, DocumentError, FieldError
from feedsvc.model import as_uri, section_slug, slugify, split_section

MAX_HEADLINE = 300  # a longer second block is a paragraph: the page has no headline
MAX_CRUMB = 40  # a breadcrumb names sections, a few words each
MAX_CAPTION = 400  # captions without a credit are recognised only when short

_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_CREDIT = re.compile(r"\(\s*(?:photo|picture|image)s?\s+by\s+[^()]+\)$", re.IGNORECASE)
_PHOTO_CAPTION = re.compile(
    r"^(?:an?|the|this)\s+(?:handout\s+|file\s+)?(?:photo|picture|image)\b", re.IGNORECASE
)
_NBSP_END = re.compile(r"\xa0\s*$")  # the page dump leaves it after captions and link titles
_READ_MORE = re.compile(r"^read more\s*:?$", re.IGNORECASE)
_FOOTER = re.compile(r"\balternate addresses\s*:?$", re.IGNORECASE)
_ROKU_LINE = re.compile(r"\bRoku$")
# The page dumps' file names: a sequence number and the page's key (hexadecimal).
_KEYED_NAME = re.compile(r"^[0-9]+_([0-9a-fA-F]{8,64})$")


def looks_like_page_text(text: str) -> bool:
    """Sniff the format: anything non-blank that does not open like JSON is a page."""
    start = text.lstrip("\ufeff").lstrip()
    return bool(start) and start[0] not in "{["


def page_key(stem: str) -> str | None:
    """The key a page dump's file name carries (`000_780554462f59e82e` -> `780554462f59e82e`),
    or None."""
    match = _KEYED_NAME.match(stem)
    return match.group(1) if match else None


def parse_page(text: str, *, published: str | None, source: str = "<page>",
               article_id: str | None = None) -> dict[str, Any]:
    """Turn one page into a raw article document; raise `DocumentError` if it is not usable.
    Without `article_id` the id is derived from the content."""
    blocks = _without_footer(_blocks(text))
    errors = []
    names = _breadcrumb(blocks[0]) if blocks else None
    if names is None:
        errors.append(
            FieldError(
                "section", f"{source} does not start with a breadcrumb such as 'News / Turkey'"
            )
        )
    else:
        blocks = blocks[1:]
    title = _clean(blocks[0]) if blocks else ""
    if not title or len(title) > MAX_HEADLINE:
        errors.append(FieldError("title", f"{source} has no headline after the breadcrumb"))
    if published is None:
        errors.append(
            FieldError("published", f"{source} carries no date: give it with --published")
        )
    if errors:
        raise DocumentError(errors)
    assert names is not None

    body = _body(blocks[1:], title)
    section = "/".join(names)
    if article_id is None:
        digest = hashlib.sha256("\n".join([section, title, *body]).encode()).hexdigest()
        article_id = "page-" + digest[:16]
    doc = {
        "id": article_id,
        # slugs keep non-ASCII letters: the path is written as the URI it stands for
        "url": as_uri(f"/{section_slug(names)}/{slugify(title) or slugify(article_id)}"),
        "section": section,
        "title": title,
        "published": published,
    }
    if body:
        doc["body"] = "\n".join(body)
    return doc


def _blocks(text: str) -> list[str]:
    """The blank-line separated blocks, as written (line breaks and trailing spaces kept)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return [block for block in _BLANK_LINES.split(text) if block.strip()]


def _clean(block: str) -> str:
    """The block's text on one line, runs of whitespace (also no-break spaces) as one space."""
    return " ".join(block.split())


def _without_footer(blocks: list[str]) -> list[str]:
    """Drop the site footer: the alternate-addresses sentence onwards and a final Roku line."""
    for i, block in enumerate(blocks):
        if _FOOTER.search(_clean(block)):
            blocks = blocks[:i]
            break
    while blocks and _ROKU_LINE.search(_clean(blocks[-1])):
        blocks = blocks[:-1]
    return blocks


def _breadcrumb(block: str) -> tuple[str, ...] | None:
    """`News / Turkey` -> ("News", "Turkey"); None unless the block is one such line."""
    if "\n" in block.strip():
        return None
    names = tuple(_clean(name) for name in split_section(block))
    if not 2 <= len(names) <= MAX_SECTION_DEPTH:
        return None
    if all(slugify(name) and len(name) <= MAX_CRUMB for name in names):
        return names
    return None


def _body(blocks: list[str], title: str) -> list[str]:
    """The body as HTML blocks (the renderers derive the summary from its paragraphs)."""
    body: list[str] = []
    for block in blocks:
        text = _clean(block)
        if _READ_MORE.match(text) or text.casefold() == title.casefold():
            continue  # a "Read More" marker or a related link reduced to its title
        kind = ' class="caption"' if _is_caption(block, text) else ""
        body.append(f"<p{kind}>{escape(text, quote=False)}</p>")
    return body


def _is_caption(block: str, text: str) -> bool:
    """Whether the block is a photo caption. The page keeps no image URL, so a caption is a
    paragraph of its own class in the page's own words ("… (Photo by AFP)"), not a `<figure>`:
    readers would show an empty figure."""
    return bool(_CREDIT.search(text)) or (
        len(text) <= MAX_CAPTION and bool(_PHOTO_CAPTION.match(text) or _NBSP_END.search(block)))
