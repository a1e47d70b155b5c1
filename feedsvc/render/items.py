"""Articles turned into feed items: sanitised once per refresh, then placed on each address."""

from __future__ import annotations

import dataclasses
import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from feedsvc.characters import showable
from feedsvc.model import (
    Article,
    Image,
    RelatedLink,
    Video,
    VideoType,
    person,
    updated_as_of,
)
from feedsvc.render.text import excerpt_html, label, sanitize_html, summary_from_body

log = logging.getLogger(__name__)

SUMMARY_LENGTH = 300
# Item ids are UUIDs named by the article id alone: the same on every address, across
# renders, and when the site's domain or an article's headline changes.
_ITEM_NAMESPACE = UUID("5b0d7c8e-7a0b-4c1f-9d55-2f7f1b0e6a11")


_VIDEO_TYPES: dict[VideoType, str] = {
    "mp4": "video/mp4", "hls": "application/vnd.apple.mpegurl", "dash": "application/dash+xml",
}
_VIDEO_EXTENSIONS: dict[str, VideoType] = {
    ".mp4": "mp4", ".m4v": "mp4", ".m3u8": "hls", ".mpd": "dash",
}


def video_kind(video: Video) -> VideoType | None:
    """mp4, hls or dash: as declared, else as the URL's extension implies; None if neither."""
    if video.type:
        return video.type
    path = urlsplit(video.url).path.lower()
    return next((k for ext, k in _VIDEO_EXTENSIONS.items() if path.endswith(ext)), None)


def video_type(video: Video) -> str:
    """The video's media type, for Media RSS, Atom enclosures and JSON Feed attachments."""
    kind = video_kind(video)
    guessed, _ = mimetypes.guess_type(urlsplit(video.url).path)
    return _VIDEO_TYPES[kind] if kind else guessed or "application/octet-stream"


def image_type(image: Image) -> str:
    """The image's media type: as declared, else guessed from its URL, else image/jpeg."""
    guessed, _ = mimetypes.guess_type(urlsplit(image.url).path)
    return image.type or (guessed if guessed and guessed.startswith("image/") else "image/jpeg")


class ItemId(str):
    """An item's id as every format writes it, `urn:uuid:…`, still holding its UUID for the
    formats that spell it otherwise (Roku's hex), so nobody parses the string back."""

    uuid: UUID

    def __new__(cls, value: UUID) -> ItemId:
        item_id = super().__new__(cls, f"urn:uuid:{value}")
        item_id.uuid = value
        return item_id


def item_id(article_id: str) -> ItemId:
    return ItemId(uuid5(_ITEM_NAMESPACE, article_id))


def feed_id(section_path: str) -> str:
    """A feed's Atom id, named by its section path as item ids are by article ids: the same on
    every address and when the site's domain changes."""
    return f"urn:uuid:{uuid5(_ITEM_NAMESPACE, 'feed:' + section_path)}"


@dataclass(frozen=True, slots=True)
class Person:
    """An author: the name readers are shown, and the address if the publisher gave one."""

    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """Everything a renderer needs of one article, XML-safe and with absolute URLs."""

    id: ItemId
    url: str
    section: tuple[str, ...]
    title: str
    summary: str
    content_html: str
    published: datetime
    updated: datetime
    authors: tuple[Person, ...]
    tags: tuple[str, ...]
    language: str | None
    images: tuple[Image, ...]
    videos: tuple[Video, ...]
    related: tuple[RelatedLink, ...]


def as_of(item: Item, now: datetime) -> Item:
    """`item` as rendered at `now`: a change dated ahead of the clock shows as its publication
    (feedsvc.model.updated_as_of), so no feed date is later than the render."""
    updated = updated_as_of(item.published, item.updated, now)
    return item if updated == item.updated else dataclasses.replace(item, updated=updated)


def prepare(article: Article, excerpt_length: int | None = None) -> Item:
    """Sanitise and normalise `article` for every format (canonical links); with
    `excerpt_length`, its body is an excerpt of that many characters at most and a link to
    the article (feedsvc.render.text.excerpt_html)."""
    notes: list[str] = []

    def text(field: str, value: str) -> str:
        kept = showable(value)
        if len(kept) != len(value):
            notes.append(f"{field}: {len(value) - len(kept)} characters a feed cannot carry "
                         "(controls, noncharacters) removed")
        return kept

    def short(field: str, value: str) -> str:
        shown = text(field, value)
        kept = label(shown)
        if kept != shown.strip():
            notes.append(f"{field}: markup reduced to its text")
        return kept

    def author(value: str) -> Person:
        name, email = person(value)
        return Person(short("authors", name), email)

    body = sanitize_html(article.body, article.url) if article.body else ""  # logs its own
    summary = (
        text("summary", article.summary).strip() if article.summary
        else summary_from_body(body, SUMMARY_LENGTH)
    )
    item = Item(
        id=item_id(article.id),
        url=article.url,
        section=tuple(text("section", name) for name in article.section),
        title=text("title", article.title).strip(),
        summary=summary,
        content_html=body if excerpt_length is None else excerpt_html(
            body, article.summary and summary, article.url, excerpt_length),
        published=article.published,
        updated=max(article.updated, article.published),
        authors=tuple(p for p in map(author, article.authors) if p.name),
        tags=tuple(t for t in (short("tags", t) for t in article.tags) if t),
        language=article.language,
        images=tuple(
            dataclasses.replace(i, caption=i.caption and text("images.caption", i.caption),
                                credit=i.credit and short("images.credit", i.credit))
            for i in article.images
        ),
        videos=article.videos,
        related=tuple(RelatedLink(short("related.title", r.title), r.url)
                      for r in article.related),
    )
    if notes:
        log.warning("article %s normalised for the feeds: %s", article.id,
                    "; ".join(dict.fromkeys(notes)))
    return item
