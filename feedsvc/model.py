"""Domain types shared by every stage: the article document (docs/contracts.md) and sections.

They are plain frozen dataclasses so that the store, the renderers and the tests pass the same
values around without any of them depending on SQLAlchemy, feedgen or Flask.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any, Literal
from urllib.parse import quote

ArticleStatus = Literal["published", "deleted"]
VideoType = Literal["mp4", "hls", "dash"]
VideoQuality = Literal["SD", "HD", "FHD", "UHD"]
ContentMode = Literal["full", "excerpt"]  # what feeds carry of an article's body


def updated_as_of(published: datetime, updated: datetime, now: datetime) -> datetime:
    """`updated`, or `published` if `updated` is later than both `now` and `published`.

    A change dated ahead of the clock (`9999-12-31T23:59:59Z`: a CMS bug, or a hostile import)
    would date the feeds ahead of every later change, and conditional GETs would answer 304
    forever (RFC 9110 §8.8.2.1: no Last-Modified later than the response's Date). The import
    and the renderers apply the same rule, so an item shows the same date either way."""
    return published if updated > max(now, published) else updated


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    caption: str | None = None
    credit: str | None = None
    width: int | None = None
    height: int | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Video:
    url: str
    type: VideoType | None = None
    quality: VideoQuality | None = None
    duration: int | None = None
    thumbnail: str | None = None


@dataclass(frozen=True, slots=True)
class RelatedLink:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Article:
    """One validated article; datetimes are timezone-aware (UTC)."""

    id: str
    url: str
    section: tuple[str, ...]
    title: str
    published: datetime
    updated: datetime
    summary: str | None = None
    body: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str | None = None
    images: tuple[Image, ...] = ()
    videos: tuple[Video, ...] = ()
    related: tuple[RelatedLink, ...] = ()
    status: ArticleStatus = "published"

    @property
    def section_path(self) -> str:
        return section_slug(self.section)

    def to_document(self) -> dict[str, Any]:
        """The JSON-ready document the store keeps: the import shape, normalised. Built field
        by field (not with `dataclasses.asdict`, whose deep copies cost a third of an import)."""
        doc = {
            "id": self.id,
            "url": self.url,
            "section": list(self.section),
            "title": self.title,
            "published": self.published.isoformat(),
            "updated": self.updated.isoformat(),
            "summary": self.summary,
            "body": self.body,
            "authors": list(self.authors),
            "tags": list(self.tags),
            "language": self.language,
            "images": [_known(i) for i in self.images],
            "videos": [_known(v) for v in self.videos],
            "related": [_known(r) for r in self.related],
            "status": self.status,
        }
        return {k: v for k, v in doc.items() if v is not None and v != []}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Article:
        """Rebuild an article from a document written by `to_document` (trusted input)."""
        return cls(
            id=doc["id"],
            url=doc["url"],
            section=tuple(doc["section"]),
            title=doc["title"],
            published=datetime.fromisoformat(doc["published"]),
            updated=datetime.fromisoformat(doc["updated"]),
            summary=doc.get("summary"),
            body=doc.get("body"),
            authors=tuple(doc.get("authors", ())),
            tags=tuple(doc.get("tags", ())),
            language=doc.get("language"),
            images=tuple(Image(**i) for i in doc.get("images", ())),
            videos=tuple(Video(**v) for v in doc.get("videos", ())),
            related=tuple(RelatedLink(**r) for r in doc.get("related", ())),
            status=doc.get("status", "published"),
        )


def _known(value: Image | Video | RelatedLink) -> dict[str, Any]:
    """A nested value's fields that are set."""
    return {f: v for f in value.__slots__ if (v := getattr(value, f)) is not None}


@dataclass(frozen=True, slots=True)
class Section:
    """A node of the section tree; the root (names == ()) is the whole site."""

    names: tuple[str, ...]
    title: str
    description: str = ""
    content: ContentMode | None = None  # None: as the parent section, or the site

    @property
    def path(self) -> str:
        return section_slug(self.names)


_SLUG_JUNK = re.compile(r"[^\w]+", re.UNICODE)


def slugify(name: str) -> str:
    """`Middle East` -> `middle-east`; non-ASCII letters are kept (IRIs allow them)."""
    return _SLUG_JUNK.sub("-", name.strip().lower()).strip("-_")


# A path segment the feeds' URLs use themselves (RFC 5005 archives, feedsvc.archives): a section
# slugged to it is renamed with a trailing `_`, which `slugify` never leaves, so the new name is
# not another section's.
RESERVED_SEGMENTS = frozenset({"archive"})


def _unreserved(slug: str) -> str:
    return f"{slug}_" if slug in RESERVED_SEGMENTS else slug


def section_slug(names: tuple[str, ...] | list[str]) -> str:
    """The URL path of a section: slugged names joined by `/`; '' is the whole site. A name
    slugged to a reserved segment (`archive`, anywhere) is renamed `archive_`, and a top-level
    section slugged `tag` or `author` becomes `tag_`, `author_`: those paths are the archives'
    and the tag and author feeds', and no slug ends with `_`."""
    parts = [_unreserved(slugify(n)) for n in names]
    if parts and parts[0] in LABEL_KINDS:
        parts[0] = f"{parts[0]}_"
    return "/".join(parts)


LabelKind = Literal["tag", "author"]
LABEL_KINDS: tuple[LabelKind, ...] = ("tag", "author")
_LABEL_SPACE = re.compile(r"[\s\-]+")
_SUFFIXED = re.compile(r"-[0-9a-f]{8}$")


def _label_char(char: str) -> str:
    """A character of a tag or author slug: letters, marks and digits of any script kept (the
    marks too: Devanagari vowel signs and Arabic harakat are not `\\w`), Persian's zero-width
    non-joiner kept (it is part of the spelling), anything else a separator."""
    return char if unicodedata.category(char)[0] in "LMN" or char in "_\u200c" else "-"


def label_slug(name: str) -> str:
    """The slug of a tag or author name: stable (a function of the name alone, so the same
    whatever the import order), unique and readable in any script.

    The name is NFKC-normalised, case-folded, and runs of spaces and hyphens become one `-`
    (`Middle East`, `middle-east` and `MIDDLE  EAST` are one tag). If that is already a slug
    it is the slug. Otherwise something was dropped (`C++`, `U.S.`, `AT&T`) and another name
    could give the same slug (`C`), so the slug gets `-` and 8 hex digits of the name's
    SHA-256: `c-3b5d8b6c`. A plain name that looks suffixed is suffixed too, so the two
    forms never meet."""
    key = _LABEL_SPACE.sub("-", unicodedata.normalize("NFKC", name).casefold()).strip("-")
    base = "-".join(filter(None, "".join(map(_label_char, key)).split("-")))
    if base == key and base and not _SUFFIXED.search(base):
        return base
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{base}-{digest}" if base else digest


def person(author: str) -> tuple[str, str | None]:
    """An author as (name, email): `Jane Doe <jane@example.org>` is a name and an address."""
    name, email = parseaddr(author)
    if email and "@" in email and name and author.rstrip().endswith(">"):
        return name, email
    return author, None


def is_label_feed(path: str) -> bool:
    """Whether `path` is a tag's or an author's feed (`tag/<slug>`), not a section's."""
    kind, _, slug = path.partition("/")
    return kind in LABEL_KINDS and bool(slug) and "/" not in slug


def label_feed(kind: LabelKind, name: str) -> str:
    """The feed path of a tag or author: `tag/<slug>`, `author/<slug>` (an author by name:
    `Jane Doe <jane@example.org>` is `author/jane-doe`)."""
    return f"{kind}/{label_slug(person(name)[0] if kind == 'author' else name)}"


def split_section(value: str) -> tuple[str, ...]:
    """`"News / Turkey"` -> `("News", "Turkey")`: spaces around `/` are ignored."""
    return tuple(part.strip() for part in value.split("/"))


def ancestor_paths(path: str) -> list[str]:
    """Every feed an article filed under `path` appears in: the site (''), then each ancestor."""
    if not path:
        return [""]
    parts = path.split("/")
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


_URL_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*(?=[/?#]|$)")


# Characters RFC 3986 allows in a URI (reserved, unreserved and '%' of existing escapes).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"


def as_uri(url: str) -> str:
    """`url` with non-ASCII and other characters outside RFC 3986 percent-encoded (UTF-8), as
    RFC 3987 §3.1 maps an IRI to a URI (space and `"<>\\^`{|}` too; existing escapes kept):
    publishers' URLs carry spaces and Cyrillic or Persian path segments, section slugs may
    be IRIs, and JSON `uri` fields must not carry either raw. The host is left as it is."""
    return quote(url, safe=_URI_SAFE)


def lower_origin(url: str) -> str:
    """`url` with its scheme and host in lower case, as RFC 3986 makes them equivalent: one
    spelling per origin, so that links on the canonical origin are found by a literal search
    (feedsvc.render.mirrors). A URL with user info is left as it is."""
    match = _URL_ORIGIN.match(url)
    return match.group().lower() + url[match.end():] if match else url


# A sentence ends at a full stop, question or exclamation mark or an ellipsis, with any closing
# quotes or brackets, before a space (Arabic and Urdu marks too); CJK full stops need no space.
_SENTENCE_END = re.compile("[.!?\u2026\u061f\u06d4][\"'\u201d\u2019\u00bb)\\]]*(?=\\s)"
                           "|[\u3002\uff01\uff1f]")


def shorten(text: str, limit: int, *, sentences: bool = False) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis if cut
    (mid-word for a script written without spaces); with `sentences`, at the last sentence
    end that fits, without an ellipsis, when one does. Ingest shortens titles with it, render
    teasers, descriptions and excerpts."""
    if len(text) <= limit:
        return text
    if sentences:
        ends = [e for m in _SENTENCE_END.finditer(text, 0, limit + 1) if (e := m.end()) <= limit]
        if ends:
            return text[:ends[-1]]
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut.rstrip(" ,;:.") + "…"
