"""Validation of the article document (docs/contracts.md): untrusted JSON in, `Article` or field
errors out.

Every rule of the contract lives here, so the JSON Lines importer, the page-text importer and the
tests agree on what a valid article is. All problems of a document are collected, not just the
first, so a publisher can fix a line in one go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from html import escape
from typing import Any, TypeVar, get_args
from urllib.parse import urlsplit

import idna

from feedsvc.characters import showable, unshowable
from feedsvc.model import (
    Article,
    ArticleStatus,
    Image,
    RelatedLink,
    Video,
    VideoQuality,
    VideoType,
    as_uri,
    lower_origin,
    shorten,
    slugify,
    split_section,
    updated_as_of,
)

Choice = TypeVar("Choice", bound=str)  # one of a Literal's values (a video's type, ...)
MAX_ID = 200
# A title up to this long is kept (refused beyond: a hostile size); one longer than
# TITLE_LENGTH is shown shortened at a word with "…" (feed readers and Roku show a line or
# two, Google News about 110 characters), and an article's full title opens its body.
MAX_TITLE = 10_000
TITLE_LENGTH = 300
MAX_SUMMARY = 10_000
MAX_BODY = 2_000_000
MAX_LIST = 100
MAX_NAME = 200
MAX_SECTION_DEPTH = 8
MAX_URL = 2_000
# HTML parsers (html5ever in nh3 among them) spend time per tag in proportion to how deeply the
# tag is nested: 100,000 nested <div>s take a minute to sanitise, at every render. Articles
# nest a few levels, tables a few more; the tag count bounds what the estimate below misses.
MAX_HTML_DEPTH = 100
MAX_HTML_TAGS = 20_000
# The years of the dates every stage carries, in UTC. From 1900: RSS's RFC 822 dates begin
# then (RFC 5322 §3.3), and a year under 1000 is written in under four digits, which readers
# take for a two-digit year (feedparser reads year 1 as 2001). To 9998: December 9999 has no
# next month a datetime holds, where its archive ends (feedsvc.archives). Atom's and JSON
# Feed's RFC 3339 and HTTP dates (four-digit years), Roku's, SQLite's text and PostgreSQL's
# timestamps (to 294276) hold all of them.
FIRST_YEAR, LAST_YEAR = 1900, 9998
# The largest count (seconds, pixels): 2**53 - 1 is the largest integer every JSON reader
# holds exactly (RFC 7493 §2.2), as JSON Feed's and Roku's readers in JavaScript must.
MAX_COUNT = 2**53 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# A lone surrogate (JSON "\ud800") has no UTF-8 form: no store or feed could carry it.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)
_SPACE = re.compile(r"\s")
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_MIME = re.compile(r"^[\w.+-]+/[\w.+-]+$")
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
# Elements that never have content (HTML §13.1.2): a start tag opens nothing.
_VOID = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"))
# Open elements a start tag closes (`<li>a<li>b`: two items, not nested ones; `<tr><td>a<tr>`:
# two rows).
_CELLS = frozenset(("td", "th"))
_CLOSES = {"li": frozenset(("li",)), "p": frozenset(("p",)), "option": frozenset(("option",)),
           "dd": frozenset(("dd", "dt")), "dt": frozenset(("dd", "dt")), "td": _CELLS,
           "th": _CELLS, "tr": _CELLS | {"tr"}}


def html_nesting(fragment: str) -> tuple[int, int]:
    """(tags, depth) of an HTML fragment: how many start and end tags it has and about how
    deeply its elements nest, in linear time. An end tag closes up to the latest open element
    of its name and is ignored when none is open (as an HTML parser does); a `<p>`, `<li>`,
    `<td>`, `<tr>`… start tag closes the open paragraph, item or cell on top. Other implied
    closes count as nesting; what a parser keeps open that this does not (misnested
    `<b><div></b>`) is bounded by the tag count."""
    brackets = fragment.count("<")
    if brackets <= MAX_HTML_DEPTH:  # the common case: too few tags to matter
        return brackets, brackets
    tags = depth = 0
    stack: list[str] = []
    open_names: dict[str, int] = {}
    for match in _TAG.finditer(fragment):
        tags += 1
        name = match.group(2).lower()
        if not match.group(1):
            closes = _CLOSES.get(name, ())
            while stack and stack[-1] in closes:
                open_names[stack.pop()] -= 1
            if name not in _VOID:
                stack.append(name)
                open_names[name] = open_names.get(name, 0) + 1
                depth = max(depth, len(stack))
        elif open_names.get(name):
            while True:
                closed = stack.pop()
                open_names[closed] -= 1
                if closed == name:
                    break
    return tags, depth


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Normalised:
    """Odd but legitimate data kept in a normalised form: the importer logs it with its file
    and line, so that an operator can fix the source."""

    field: str
    change: str

    def __str__(self) -> str:
        return f"{self.field}: {self.change}"


class DocumentError(ValueError):
    """An article document broke the contract; `errors` names each field and why."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


def shown_title(title: str) -> str:
    """`title` as feeds show it: whole up to TITLE_LENGTH, else cut at a word with "…" (mid-word
    for a script written without spaces)."""
    return shorten(title, TITLE_LENGTH)


class _Checker:
    """Collects errors while reading fields, so all of a document's problems are reported, and
    the normalisations made, so each can be logged."""

    def __init__(self, origin: str, timezone: tzinfo):
        self.origin = origin.rstrip("/")
        self.timezone = timezone
        self.errors: list[FieldError] = []
        self.notes: list[Normalised] = []

    def fail(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def note(self, field: str, change: str) -> None:
        self.notes.append(Normalised(field, change))

    def text(
        self, value: Any, field: str, *, limit: int, required: bool = True,
        single_line: bool = False
    ) -> str | None:
        if value is None:
            if required:
                self.fail(field, "is required")
            return None
        if not isinstance(value, str):
            self.fail(field, f"must be a string, not {type(value).__name__}")
            return None
        if required and not value.strip():
            self.fail(field, "must not be empty")
            return None
        if len(value) > limit:
            self.fail(field, f"is {len(value)} characters long, the limit is {limit}")
            return None
        if single_line and _CONTROL.search(value):
            self.fail(field, "must not contain control characters or lone surrogates")
            return None
        return _SURROGATE.sub("", value)

    def identifier(self, value: Any, field: str) -> str | None:
        """An id: 1 to MAX_ID showable characters, no control character, no white space around.
        It is an identity, so anything else is refused, never normalised: two ids normalised
        alike would name one article."""
        text = self.text(value, field, limit=MAX_ID, single_line=True)
        if text is None:
            return None
        if text != text.strip():
            self.fail(field, "must not begin or end with white space")
            return None
        if removed := unshowable(text):
            self.fail(field, f"must not contain {', '.join(removed)}: an id has only showable "
                             "characters (no controls, noncharacters or U+FFFD)")
            return None
        return text

    def label(self, value: Any, field: str, *, required: bool = True) -> str | None:
        """A one-line name (a tag, an author, a section level, a photo credit): refused with a
        control character, as a broken document; kept without the other characters no feed
        can carry or no reader shows (feedsvc.characters), with a note, since a label is a name
        in feed titles, the OPML and the index page and a key (its feed's slug, the store's
        label and section rows); refused when nothing else is left."""
        text = self.text(value, field, limit=MAX_NAME, required=required, single_line=True)
        if text is None:
            return None
        removed = unshowable(text)
        if not removed:
            return text
        if not self.anything_showable(text, field):
            return None
        self.note(field, f"{', '.join(removed)} removed: characters no feed can carry or no "
                         "reader shows")
        return showable(text)

    def anything_showable(self, text: str, field: str) -> bool:
        """Whether `text` keeps a character once what no feed can carry is removed; if not, it
        is refused, naming what it held."""
        if showable(text).strip():
            return True
        self.fail(field, f"has no character a feed can carry, only {', '.join(unshowable(text))}")
        return False

    def title(self, value: Any, field: str) -> tuple[str | None, str | None]:
        """(the title as shown, the full title if that is shortened). Kept as given: render
        drops what no feed can carry, so one with nothing else is refused here (an Atom entry
        without a title is left out of its feed)."""
        text = self.text(value, field, limit=MAX_TITLE)
        if text is None:
            return None, None
        text = text.strip()
        if not self.anything_showable(text, field):
            return None, None
        if len(text) <= TITLE_LENGTH:
            return text, None
        shown = shown_title(text)
        self.note(field, f"is {len(text)} characters long, over the {TITLE_LENGTH} shown: "
                         f"shortened to {len(shown)} with '…'")
        return shown, text

    def html(self, value: Any, field: str, *, limit: int) -> str | None:
        text = self.text(value, field, limit=limit, required=False)
        if text is None:
            return None
        tags, depth = html_nesting(text)
        if depth > MAX_HTML_DEPTH:
            self.fail(field, f"nests HTML elements {depth} deep, the limit is {MAX_HTML_DEPTH}")
            return None
        if tags > MAX_HTML_TAGS:
            self.fail(field, f"has {tags} HTML tags, the limit is {MAX_HTML_TAGS}")
            return None
        return text

    def url(self, value: Any, field: str, *, required: bool = True) -> str | None:
        text = self.text(value, field, limit=MAX_URL, required=required, single_line=True)
        if text is None:
            return None
        text = text.strip()
        if text.startswith("/") and not text.startswith("//"):
            return self._as_uri(self.origin + text, field, text)
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            self.fail(field, f"is not a URL ({exc})")
            return None
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            self.fail(field, "must be an http(s) URL or a path starting with '/'")
            return None
        if _SPACE.search(parts.netloc):
            self.fail(field, "must not contain white space in its host")
            return None
        netloc = parts.netloc
        if not netloc.isascii():  # an internationalised host name: its IDNA (punycode) form
            user, at, host = netloc.rpartition("@")
            host, colon, port = host.partition(":")
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError as exc:
                self.fail(field, f"{parts.hostname!r} is not a host name ({exc})")
                return None
            netloc = f"{user}{at}{host}{colon}{port}"
        start = len(parts.scheme) + 3  # after "scheme://"
        return self._as_uri(text[:start] + netloc + text[start + len(parts.netloc):], field,
                            text)

    def _as_uri(self, url: str, field: str, given: str) -> str:
        """`url` as a URI (RFC 3987 §3.1), with a note when that changed what was `given`."""
        uri = as_uri(url)
        if uri != url:
            self.note(field, f"{given} is not a URI: kept as {lower_origin(uri)} (RFC 3987 §3.1)")
        return lower_origin(uri)

    def timestamp(self, value: Any, field: str, *, required: bool = True) -> datetime | None:
        text = self.text(value, field, limit=40, required=required, single_line=True)
        if text is None:
            return None
        if not _RFC3339.match(text.strip()):
            self.fail(field, f"{text!r} is not an RFC 3339 date-time")
            return None
        try:
            when = datetime.fromisoformat(text.strip().upper().replace(" ", "T"))
        except ValueError as exc:
            self.fail(field, f"{text!r} is not a valid date-time ({exc})")
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.timezone)
        try:
            utc = when.astimezone(UTC)
        except OverflowError:  # beyond year 1 or 9999 in UTC
            utc = None
        if utc is None or not FIRST_YEAR <= utc.year <= LAST_YEAR:
            self.fail(field, f"{text!r} is out of range: dates from {FIRST_YEAR} to "
                             f"{LAST_YEAR} (UTC) are accepted")
            return None
        return utc

    def items(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(field, f"must be a list, not {type(value).__name__}")
            return []
        if len(value) > MAX_LIST:
            self.fail(field, f"has {len(value)} entries, the limit is {MAX_LIST}")
            return []
        return value

    def names(self, value: Any, field: str) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.items(value, field)):
            name = self.label(item, f"{field}[{i}]")
            if name is not None:
                out.append(name.strip())
        return tuple(out)

    def objects(
        self, value: Any, field: str, build: Callable[[dict[str, Any], str], Any]
    ) -> tuple[Any, ...]:
        out = []
        for i, item in enumerate(self.items(value, field)):
            where = f"{field}[{i}]"
            if not isinstance(item, dict):
                self.fail(where, "must be an object")
                continue
            built = build(item, where)
            if built is not None:
                out.append(built)
        return tuple(out)

    def choice(self, value: Any, field: str, allowed: tuple[Choice, ...]) -> Choice | None:
        if value is None:
            return None
        for option in allowed:
            if value == option:
                return option
        self.fail(field, f"must be one of {', '.join(allowed)}, not {value!r}")
        return None

    def count(self, value: Any, field: str) -> int | None:
        """A duration in seconds (rounded) or a width or height in pixels; what is wrong with
        any other value is said, with what to give instead."""
        if value is None:
            return None
        unit = "seconds" if field.endswith("duration") else "pixels"
        if isinstance(value, bool) or not isinstance(value, int | float):
            kinds = {bool: "true" if value is True else "false", str: "a string",
                     list: "a list", dict: "an object"}
            self.fail(field, f"is {kinds.get(type(value), type(value).__name__)}, "
                             f"give a number of {unit}")
            return None
        if isinstance(value, float) and math.isnan(value):
            self.fail(field, f"is NaN, give a number of {unit}")
            return None
        if value < 0:
            self.fail(field, f"{value!r} is negative, give 0 or more {unit}")
            return None
        if value > MAX_COUNT:
            self.fail(field, f"{value!r} is over the limit of {MAX_COUNT:,} {unit}")
            return None
        if isinstance(value, float) and not value.is_integer() and field.endswith("duration"):
            return round(value)
        if isinstance(value, float) and not value.is_integer():
            self.fail(field, "must be a whole number")
            return None
        return int(value)

    def section(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            names = split_section(value)
        elif isinstance(value, list) and all(isinstance(n, str) for n in value):
            names = tuple(n.strip() for n in value)
        elif value is None:
            self.fail("section", "is required")
            return ()
        else:
            self.fail("section", "must be a 'A/B' string or a list of names")
            return ()
        if not names or len(names) > MAX_SECTION_DEPTH:
            self.fail("section", f"must have 1 to {MAX_SECTION_DEPTH} levels")
            return ()
        kept = []
        for name in names:
            shown = self.label(name, "section", required=False)
            if shown is None:
                return ()
            if not slugify(shown):
                self.fail("section", f"{name!r} is not a usable section name")
                return ()
            kept.append(shown.strip())
        return tuple(kept)

    def image(self, item: dict[str, Any], where: str) -> Image | None:
        url = self.url(item.get("url"), f"{where}.url")
        mime = self.text(item.get("type"), f"{where}.type", limit=100, required=False)
        if mime is not None and not _MIME.fullmatch(mime):
            self.fail(f"{where}.type", f"{mime!r} is not a media type")
        image = Image(
            url=url or "",
            caption=self.text(item.get("caption"), f"{where}.caption", limit=MAX_SUMMARY,
                              required=False),
            credit=self.label(item.get("credit"), f"{where}.credit", required=False),
            width=self.count(item.get("width"), f"{where}.width"),
            height=self.count(item.get("height"), f"{where}.height"),
            type=mime,
        )
        return image if url else None

    def video(self, item: dict[str, Any], where: str) -> Video | None:
        url = self.url(item.get("url"), f"{where}.url")
        video = Video(
            url=url or "",
            type=self.choice(item.get("type"), f"{where}.type", get_args(VideoType)),
            quality=self.choice(item.get("quality"), f"{where}.quality", get_args(VideoQuality)),
            duration=self.count(item.get("duration"), f"{where}.duration"),
            thumbnail=self.url(item.get("thumbnail"), f"{where}.thumbnail", required=False),
        )
        return video if url else None

    def related(self, item: dict[str, Any], where: str) -> RelatedLink | None:
        title, _ = self.title(item.get("title"), f"{where}.title")
        url = self.url(item.get("url"), f"{where}.url")
        return RelatedLink(title=title, url=url) if title and url else None


def parse_article(doc: Any, *, origin: str, timezone: tzinfo, now: datetime | None = None,
                  notes: list[Normalised] | None = None) -> Article:
    """Validate one decoded JSON value against the article contract (docs/contracts.md); raise
    `DocumentError` on any problem.

    Relative URLs are resolved on the canonical `origin`; date-times without an offset are read
    in the site's `timezone`. Unknown fields are ignored so publishers can add their own. Odd
    but legitimate values are normalised (an `updated` later than `now` and `published`
    becomes `published`), each change appended to `notes` when given.
    """
    if not isinstance(doc, dict):
        raise DocumentError([FieldError("(line)", "must be a JSON object")])
    c = _Checker(origin, timezone)
    article_id = c.identifier(doc.get("id"), "id")
    url = c.url(doc.get("url"), "url")
    section = c.section(doc.get("section"))
    title, full_title = c.title(doc.get("title"), "title")
    published = c.timestamp(doc.get("published"), "published")
    updated = c.timestamp(doc.get("updated"), "updated", required=False)
    summary = c.text(doc.get("summary"), "summary", limit=MAX_SUMMARY, required=False)
    body = c.html(doc.get("body"), "body", limit=MAX_BODY)
    authors = c.names(doc.get("authors"), "authors")
    tags = c.names(doc.get("tags"), "tags")
    language = c.text(doc.get("language"), "language", limit=35, required=False)
    if language is not None and not _BCP47.fullmatch(language):
        c.fail("language", f"{language!r} is not a BCP 47 language tag")
    images = c.objects(doc.get("images"), "images", c.image)
    videos = c.objects(doc.get("videos"), "videos", c.video)
    related = c.objects(doc.get("related"), "related", c.related)
    status: ArticleStatus | None = c.choice(
        "published" if doc.get("status") is None else doc["status"],  # null: the default
        "status", get_args(ArticleStatus),
    )
    if c.errors:
        raise DocumentError(c.errors)
    assert article_id and url and title and published and status  # guaranteed when no errors
    if updated is not None:
        kept = updated_as_of(published, updated, now or datetime.now(UTC))
        if kept != updated:
            c.note("updated", f"{doc['updated']} is in the future; kept as the published time, "
                              f"{kept.isoformat()}")
            updated = kept
    if full_title is not None:  # kept whole where readers show it: atop the content
        body = f'<p class="full-title">{escape(full_title, quote=False)}</p>{body or ""}'
    if notes is not None:
        notes.extend(c.notes)
    return Article(
        id=article_id,
        url=url,
        section=section,
        title=title,
        published=published,
        updated=updated or published,
        summary=summary.strip() if summary and summary.strip() else None,
        body=body if body and body.strip() else None,
        authors=authors,
        tags=tags,
        language=language,
        images=images,
        videos=videos,
        related=related,
        status=status,
    )
