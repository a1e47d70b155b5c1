"""The article document validator (docs/contracts.md): every field's rules, and errors reported
together."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.ingest.document import (
    MAX_ID,
    MAX_LIST,
    MAX_NAME,
    DocumentError,
    FieldError,
    Normalised,
    parse_article,
)
from feedsvc.model import Article, Image, RelatedLink, Video

ORIGIN = "https://news.example"
TEHRAN = ZoneInfo("Asia/Tehran")
MINIMAL = {
    "id": "ex-1",
    "url": "https://news.example/news/turkey/1",
    "section": "News / Turkey",
    "title": "Putin, Erdogan warn over escalating al-Quds tensions",
    "published": "2017-12-11T10:00:00Z",
}
_DROP = object()


def doc(**changes: Any) -> dict[str, Any]:
    """MINIMAL with fields replaced; a field given as `_DROP` is removed."""
    out = dict(MINIMAL)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def parse(value: Any) -> Article:
    return parse_article(value, origin=ORIGIN, timezone=TEHRAN)


def errors(value: Any) -> list[FieldError]:
    with pytest.raises(DocumentError) as info:
        parse(value)
    assert info.value.errors, "a DocumentError must name at least one field"
    return info.value.errors


def failed_fields(value: Any) -> list[str]:
    return [e.field for e in errors(value)]


# ---- the whole document ------------------------------------------------------------------------

def test_minimal_document_gives_an_article_with_defaults():
    article = parse(doc())
    assert article.id == "ex-1"
    assert article.url == "https://news.example/news/turkey/1"
    assert article.section == ("News", "Turkey")
    assert article.section_path == "news/turkey"
    assert article.title == MINIMAL["title"]
    assert article.published == datetime(2017, 12, 11, 10, 0, tzinfo=UTC)
    assert article.updated == article.published
    assert article.status == "published"
    assert (article.summary, article.body, article.language) == (None, None, None)
    assert (article.authors, article.tags, article.images, article.videos, article.related) == (
        (), (), (), (), ()
    )


def test_full_document_round_trips_through_to_document():
    full = doc(
        updated="2017-12-11T12:30:00+03:30",
        summary="  Teaser.  ",
        body="<p>Body</p>",
        authors=["Ann", " Bob "],
        tags=["Turkey", "Russia"],
        language="en-GB",
        images=[{"url": "/img/1.jpg", "caption": "A photo", "credit": "AFP", "width": 800,
                 "height": 600, "type": "image/jpeg"}],
        videos=[{"url": "https://cdn.example/v.m3u8", "type": "hls", "quality": "HD",
                 "duration": 95, "thumbnail": "/img/t.jpg"}],
        related=[{"title": " Read this ", "url": "/news/2"}],
        status="published",
        custom_publisher_field={"ignored": True},
    )
    article = parse(full)
    assert article.updated == datetime(2017, 12, 11, 9, 0, tzinfo=UTC)
    assert article.summary == "Teaser."
    assert article.authors == ("Ann", "Bob")
    assert article.images == (
        Image("https://news.example/img/1.jpg", "A photo", "AFP", 800, 600, "image/jpeg"),
    )
    assert article.videos == (
        Video("https://cdn.example/v.m3u8", "hls", "HD", 95, "https://news.example/img/t.jpg"),
    )
    assert article.related == (RelatedLink("Read this", "https://news.example/news/2"),)
    # The stored shape is itself a valid document that parses to the same article.
    assert parse(json.loads(json.dumps(article.to_document()))) == article
    assert Article.from_document(article.to_document()) == article


@pytest.mark.parametrize("value", [None, [], "text", 3, [MINIMAL]])
def test_a_document_must_be_an_object(value):
    assert failed_fields(value) == ["(line)"]


def test_all_errors_of_a_document_are_reported_together():
    bad = doc(id="", url="javascript:alert(1)", title=_DROP)
    errs = errors(bad)
    assert [e.field for e in errs] == ["id", "url", "title"]
    assert all(e.reason for e in errs)
    assert str(DocumentError(errs)).count(";") == 2


def test_nested_and_top_level_errors_are_collected_in_one_go():
    bad = doc(
        published="yesterday",
        language="english please",
        images=[{"url": "/ok.jpg"}, {"url": "ftp://x/y.jpg", "width": -1}],
        videos=[{"url": "/v.mp4", "type": "avi", "quality": "4K"}],
        status="draft",
    )
    assert failed_fields(bad) == [
        "published", "language", "images[1].url", "images[1].width",
        "videos[0].type", "videos[0].quality", "status",
    ]


# ---- id -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["x", "a" * MAX_ID, "ex-2017/12/11#1", "ünïcödé-id"])
def test_id_accepted(value):
    assert parse(doc(id=value)).id == value


@pytest.mark.parametrize(
    "value, reason",
    [
        (_DROP, "required"),
        (None, "required"),
        ("", "empty"),
        ("   ", "empty"),
        ("a" * (MAX_ID + 1), "limit"),
        ("ab\ncd", "control"),
        ("ab\tcd", "control"),
        ("ab\x00cd", "control"),
        ("ab\x7fcd", "control"),
        (42, "string"),
        (["ex-1"], "string"),
        # an identity is refused, not normalised: two ids normalised alike would be one article
        (" ex-1", "white space"),
        ("ex-1\u3000", "white space"),
        ("ex\ufffd1", "U+FFFD"),
        ("ex\ufffe1", "U+FFFE"),
        ("ex-1\U0001ffff", "U+1FFFF"),
        ("ex\x9f1", "U+009F"),
    ],
)
def test_id_rejected(value, reason):
    [error] = errors(doc(id=value))
    assert error.field == "id"
    assert reason in error.reason


# ---- url ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, expected",
    [
        ("https://news.example/a", "https://news.example/a"),
        ("http://mirror.example/a?b=1#c", "http://mirror.example/a?b=1#c"),
        # scheme and host in one spelling (what mirror link rewriting searches for); the rest
        # of a URL is case-sensitive and kept
        ("HTTPS://News.Example/A?B#C", "https://news.example/A?B#C"),
        ("https://user@News.Example/A", "https://user@News.Example/A"),
        ("/news/turkey/1", "https://news.example/news/turkey/1"),
        ("  /padded  ", "https://news.example/padded"),
    ],
)
def test_url_accepted_and_paths_resolved_on_the_origin(value, expected):
    assert parse(doc(url=value)).url == expected


def test_path_url_resolves_on_the_origin_given():
    article = parse_article(doc(url="/a"), origin="https://other.example/", timezone=TEHRAN)
    assert article.url == "https://other.example/a"


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "ftp://news.example/a",
        "data:text/html,<script>alert(1)</script>",
        "mailto:desk@news.example",
        "//news.example/a",  # scheme-relative: not a path on the origin
        "news/turkey/1",  # relative without the leading '/'
        "https://",
        "http:/news.example",
        "https://news .example/a",  # white space in the path is percent-encoded (test_normalise)
        "https://news.example/a\nb",
        "",
        7,
    ],
)
def test_url_rejected(value):
    assert failed_fields(doc(url=value)) == ["url"]


def test_url_required():
    assert failed_fields(doc(url=_DROP)) == ["url"]


def test_url_with_broken_ipv6_host_is_a_field_error():
    assert failed_fields(doc(url="http://[::1/a")) == ["url"]


# ---- section ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, names",
    [
        ("News / Turkey", ("News", "Turkey")),
        ("News/Turkey", ("News", "Turkey")),
        ("  News  ", ("News",)),
        ("News/Middle East", ("News", "Middle East")),
        (["News", "Turkey"], ("News", "Turkey")),
        ([" News ", "Turkey "], ("News", "Turkey")),
        ("/".join("abcdefgh"), tuple("abcdefgh")),
    ],
)
def test_section_accepted(value, names):
    assert parse(doc(section=value)).section == names


def test_section_path_slugs_the_names():
    assert parse(doc(section="News / Middle East")).section_path == "news/middle-east"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "News//Turkey",
        "News/ /Turkey",
        "/News",
        "News/",
        "---",
        [],
        ["News", ""],
        ["News", "  "],
        ["News", 3],
        "/".join("abcdefghi"),  # nine levels
        "x" * (MAX_NAME + 1),
        "News/Tur\nkey",
        {"name": "News"},
        7,
        None,
        _DROP,
    ],
)
def test_section_rejected(value):
    assert failed_fields(doc(section=value)) == ["section"]


# ---- title --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [_DROP, None, "", "   ", 5, ["t"]])
def test_title_required_nonempty_string(value):
    assert failed_fields(doc(title=value)) == ["title"]


def test_title_is_stripped():
    assert parse(doc(title="  Headline \n")).title == "Headline"


# ---- published / updated ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, utc",
    [
        ("2017-12-11T10:00:00Z", datetime(2017, 12, 11, 10, 0)),
        ("2017-12-11T10:00:00z", datetime(2017, 12, 11, 10, 0)),
        ("2017-12-11t10:00:00Z", datetime(2017, 12, 11, 10, 0)),
        ("2017-12-11 10:00:00Z", datetime(2017, 12, 11, 10, 0)),
        ("2017-12-11T10:00:00.250Z", datetime(2017, 12, 11, 10, 0, 0, 250_000)),
        ("2017-12-11T10:00:00+03:00", datetime(2017, 12, 11, 7, 0)),
        ("2017-12-11T10:00:00-05:30", datetime(2017, 12, 11, 15, 30)),
        ("2017-12-11T02:00:00+03:00", datetime(2017, 12, 10, 23, 0)),
        # No offset: read in the site's zone, Asia/Tehran (+03:30 in winter, +04:30 in 2017's
        # summer time).
        ("2017-12-11T10:00:00", datetime(2017, 12, 11, 6, 30)),
        ("2017-07-01T10:00:00", datetime(2017, 7, 1, 5, 30)),
        ("2017-12-11T02:00:00", datetime(2017, 12, 10, 22, 30)),
    ],
)
def test_published_accepted_and_normalised_to_utc(value, utc):
    published = parse(doc(published=value)).published
    assert published.utcoffset().total_seconds() == 0
    assert published.replace(tzinfo=None) == utc


def test_published_without_offset_uses_the_configured_zone():
    article = parse_article(doc(published="2017-12-11T10:00:00"), origin=ORIGIN,
                            timezone=ZoneInfo("America/New_York"))
    assert article.published == datetime(2017, 12, 11, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        _DROP,
        None,
        "",
        "yesterday",
        "2017-12-11",
        "2017-12-11T10:00Z",
        "11/12/2017 10:00",
        "2017-12-11T10:00:00+0300",
        "2017-12-11T10:00:00 +03:00",
        "2017-12-11T10:00:00Europe/Istanbul",
        "2017-02-30T10:00:00Z",
        "2017-12-11T25:00:00Z",
        "2017-13-11T10:00:00Z",
        "٢٠١٧-١٢-١١T10:00:00Z",  # Arabic-Indic digits: one spelling per date, ASCII
        "２０１７-12-11T10:00:00Z",  # fullwidth
        "2017-12-11T10:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "2017-12-11T10:00:00Z\n",
        1512986400,
        ["2017-12-11T10:00:00Z"],
    ],
)
def test_published_rejected(value):
    assert failed_fields(doc(published=value)) == ["published"]


@pytest.mark.parametrize("value, utc", [
    ("1900-01-01T00:00:00Z", datetime(1900, 1, 1)),
    ("1900-01-01T00:00:00-01:00", datetime(1900, 1, 1, 1)),
    ("9998-12-31T23:59:59.999999Z", datetime(9998, 12, 31, 23, 59, 59, 999_999)),
    ("9999-01-01T01:00:00+03:00", datetime(9998, 12, 31, 22)),
])
def test_dates_at_the_bounds_are_accepted(value, utc):
    assert parse(doc(published=value)).published.replace(tzinfo=None) == utc
    parse(doc(updated=value))  # no error (one ahead of the clock is kept as `published`)


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59Z",  # every refresh died on its archive month's end, year 10000
    "9999-01-01T00:00:00Z", "9998-12-31T23:59:59-01:00", "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00+00:01",
    "1900-01-01T03:00:00",  # Asia/Tehran's offset was then +03:25:44
    "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00",  # beyond what a datetime holds in UTC
    "0001-01-01T00:00:00Z",
])
def test_dates_beyond_the_bounds_are_refused_naming_them(value):
    for field in ("published", "updated"):
        assert errors(doc(**{field: value})) == [FieldError(
            field, f"{value!r} is out of range: dates from 1900 to 9998 (UTC) are accepted")]


def test_updated_defaults_to_published_and_is_parsed_alike():
    assert parse(doc(published="2017-12-11T10:00:00")).updated == datetime(
        2017, 12, 11, 6, 30, tzinfo=UTC
    )
    article = parse(doc(updated="2017-12-12T10:00:00"))
    assert article.updated == datetime(2017, 12, 12, 6, 30, tzinfo=UTC)
    assert article.published == datetime(2017, 12, 11, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["soon", "2017-12-11", 5, ""])
def test_updated_rejected(value):
    assert failed_fields(doc(updated=value)) == ["updated"]


# ---- summary / body -----------------------------------------------------------------------------

def test_blank_summary_and_body_are_absent():
    article = parse(doc(summary="   ", body="\n"))
    assert article.summary is None
    assert article.body is None


def test_summary_and_body_may_span_lines():
    article = parse(doc(summary="one\ntwo", body="<p>a</p>\n<p>b</p>"))
    assert article.summary == "one\ntwo"
    assert article.body == "<p>a</p>\n<p>b</p>"


@pytest.mark.parametrize("field", ["summary", "body"])
def test_summary_and_body_must_be_strings(field):
    assert failed_fields(doc(**{field: ["<p>x</p>"]})) == [field]


# ---- authors / tags -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["authors", "tags"])
def test_name_lists_accepted(field):
    article = parse(doc(**{field: ["One", " Two ", "Three Four"]}))
    assert getattr(article, field) == ("One", "Two", "Three Four")
    assert getattr(parse(doc(**{field: []})), field) == ()
    assert getattr(parse(doc(**{field: ["x"] * MAX_LIST})), field) == ("x",) * MAX_LIST


@pytest.mark.parametrize("field", ["authors", "tags"])
@pytest.mark.parametrize(
    "value, fields",
    [
        ("Ann", ["{f}"]),
        ({"name": "Ann"}, ["{f}"]),
        (["x"] * (MAX_LIST + 1), ["{f}"]),
        (["Ann", 3], ["{f}[1]"]),
        ([None, "Ann", ""], ["{f}[0]", "{f}[2]"]),
        (["Ann", "B\nob"], ["{f}[1]"]),
        (["a" * (MAX_NAME + 1)], ["{f}[0]"]),
    ],
)
def test_name_lists_rejected(field, value, fields):
    assert failed_fields(doc(**{field: value})) == [f.format(f=field) for f in fields]


def test_unshowable_characters_leave_labels_with_a_note():
    """Names, section levels and credits lose what no feed can carry or no reader shows (C1
    controls, noncharacters, U+FFFD), as titles and bodies do; a control character still
    refuses one, and one left with nothing is refused."""
    notes: list[Normalised] = []
    article = parse_article(
        doc(tags=["C\x9f++", "\U0010fffe ok"], authors=["Ann \ufffdLee"],
            section=["News", "Tur\ufdd0key"], images=[{"url": "/a.jpg", "credit": "AFP\uffff"}]),
        origin=ORIGIN, timezone=TEHRAN, notes=notes)
    assert (article.tags, article.authors, article.section, article.images[0].credit) == (
        ("C++", "ok"), ("Ann Lee",), ("News", "Turkey"), "AFP")
    assert [str(n) for n in notes] == [
        f"{field}: {removed} removed: characters no feed can carry or no reader shows"
        for field, removed in (("section", "U+FDD0"), ("authors[0]", "U+FFFD"),
                               ("tags[0]", "U+009F"), ("tags[1]", "U+10FFFE"),
                               ("images[0].credit", "U+FFFF"))]
    assert [str(e) for e in errors(doc(tags=["ok", "\ufffe \uffff"], section="News/\ufffd",
                                       authors=["A\x00"]))] == [
        "section: has no character a feed can carry, only U+FFFD",
        "authors[0]: must not contain control characters or lone surrogates",
        "tags[1]: has no character a feed can carry, only U+FFFE, U+FFFF"]



def test_a_title_with_nothing_a_reader_can_show_is_refused():
    """A title of only noncharacters, C1 controls or U+FFFD would be empty in every feed (an
    Atom entry without a title is left out of the feed): refused, naming what it held; the
    same for a related link's title. Found by tests/test_pipeline_properties.py."""
    assert [str(e) for e in errors(doc(title="\ufffe\x9f ", related=[
        {"title": "\ufffd", "url": "/news/other"}]))] == [
        "title: has no character a feed can carry, only U+FFFE, U+009F",
        "related[0].title: has no character a feed can carry, only U+FFFD"]
    assert parse(doc(title="\ufffeTitle\x9f")).title == "\ufffeTitle\x9f"  # render cleans it

# ---- language -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["en", "fa", "tr", "en-US", "zh-Hant-TW", "ast", "sr-Latn"])
def test_language_accepted(value):
    assert parse(doc(language=value)).language == value


@pytest.mark.parametrize(
    "value", ["e", "english", "en_US", "en-", "-en", "en US", "en\n", "1en", "en-toolongsubtag", 5]
)
def test_language_rejected(value):
    assert failed_fields(doc(language=value)) == ["language"]


# ---- images / videos / related ------------------------------------------------------------------

def test_image_minimal_and_relative_url():
    [image] = parse(doc(images=[{"url": "/i.jpg"}])).images
    assert image == Image(url="https://news.example/i.jpg")


@pytest.mark.parametrize(
    "item, fields",
    [
        ({}, ["images[0].url"]),
        ({"url": "javascript:x"}, ["images[0].url"]),
        ({"url": "/i.jpg", "width": -5}, ["images[0].width"]),
        ({"url": "/i.jpg", "width": 10.5}, ["images[0].width"]),
        ({"url": "/i.jpg", "height": "600"}, ["images[0].height"]),
        ({"url": "/i.jpg", "height": True}, ["images[0].height"]),
        ({"url": "/i.jpg", "type": "jpeg"}, ["images[0].type"]),
        ({"url": "/i.jpg", "credit": "A\nB"}, ["images[0].credit"]),
        ({"url": "/i.jpg", "caption": 3}, ["images[0].caption"]),
        ({"url": 3, "width": "x", "type": "?"}, ["images[0].url", "images[0].type",
                                                  "images[0].width"]),
    ],
)
def test_image_field_errors_carry_their_path(item, fields):
    assert failed_fields(doc(images=[item])) == fields


def test_image_width_as_whole_float_is_accepted():
    [image] = parse(doc(images=[{"url": "/i.jpg", "width": 800.0, "height": 0}])).images
    assert (image.width, image.height) == (800, 0)


def test_nested_errors_name_the_entry_index():
    bad = doc(images=[{"url": "/ok.jpg"}, "not an object", {"url": "/ok.jpg"}, {"url": "x"}])
    assert failed_fields(bad) == ["images[1]", "images[3].url"]


@pytest.mark.parametrize("field", ["images", "videos", "related"])
def test_object_lists_must_be_lists_within_the_limit(field):
    assert failed_fields(doc(**{field: {"url": "/a"}})) == [field]
    assert failed_fields(doc(**{field: [{"url": "/a", "title": "t"}] * (MAX_LIST + 1)})) == [field]


@pytest.mark.parametrize("kind", ["mp4", "hls", "dash"])
@pytest.mark.parametrize("quality", ["SD", "HD", "FHD", "UHD"])
def test_video_type_and_quality_enums_accepted(kind, quality):
    [video] = parse(doc(videos=[{"url": "/v", "type": kind, "quality": quality}])).videos
    assert (video.type, video.quality) == (kind, quality)


@pytest.mark.parametrize(
    "item, fields",
    [
        ({"type": "mp4"}, ["videos[0].url"]),
        ({"url": "/v", "type": "MP4"}, ["videos[0].type"]),
        ({"url": "/v", "type": "webm"}, ["videos[0].type"]),
        ({"url": "/v", "quality": "hd"}, ["videos[0].quality"]),
        ({"url": "/v", "quality": "4K"}, ["videos[0].quality"]),
        ({"url": "/v", "quality": ["HD"]}, ["videos[0].quality"]),
        ({"url": "/v", "duration": -1}, ["videos[0].duration"]),
        ({"url": "/v", "duration": "90"}, ["videos[0].duration"]),
        ({"url": "/v", "duration": False}, ["videos[0].duration"]),
        ({"url": "/v", "duration": float("inf")}, ["videos[0].duration"]),
        ({"url": "/v", "duration": float("nan")}, ["videos[0].duration"]),
        ({"url": "/v", "thumbnail": "ftp://x/t.jpg"}, ["videos[0].thumbnail"]),
    ],
)
def test_video_field_errors_carry_their_path(item, fields):
    assert failed_fields(doc(videos=[item])) == fields


@pytest.mark.parametrize("value, seconds", [(90, 90), (90.0, 90), (90.4, 90), (90.6, 91), (0, 0)])
def test_video_duration_in_seconds(value, seconds):
    [video] = parse(doc(videos=[{"url": "/v", "duration": value}])).videos
    assert video.duration == seconds


@pytest.mark.parametrize("value, reason", [
    ("12", "is a string, give a number of seconds"),
    (1e300, "1e+300 is over the limit of 9,007,199,254,740,991 seconds"),
    (2**53, "9007199254740992 is over the limit of 9,007,199,254,740,991 seconds"),
    (-1, "-1 is negative, give 0 or more seconds"),
    (-0.5, "-0.5 is negative, give 0 or more seconds"),
    (True, "is true, give a number of seconds"),
    ([90], "is a list, give a number of seconds"),
    ({"seconds": 90}, "is an object, give a number of seconds"),
    (float("inf"), "inf is over the limit of 9,007,199,254,740,991 seconds"),
    (float("nan"), "is NaN, give a number of seconds"),
])
def test_a_duration_that_is_no_number_of_seconds_says_what_is_wrong(value, reason):
    assert errors(doc(videos=[{"url": "/v", "duration": value}])) == [
        FieldError("videos[0].duration", reason)]


@pytest.mark.parametrize("value, reason", [
    ("640", "is a string, give a number of pixels"),
    (640.5, "must be a whole number"),
    (1e300, "1e+300 is over the limit of 9,007,199,254,740,991 pixels"),
])
def test_an_image_size_that_is_no_number_of_pixels_says_what_is_wrong(value, reason):
    assert errors(doc(images=[{"url": "/i.jpg", "width": value}])) == [
        FieldError("images[0].width", reason)]


def test_counts_up_to_the_limit_are_kept():
    [video] = parse(doc(videos=[{"url": "/v", "duration": 2**53 - 1}])).videos
    assert video.duration == 2**53 - 1


def test_non_finite_duration_in_a_json_line_is_rejected():
    """Python's json module accepts `Infinity` and `NaN`: they must not crash the validator."""
    line = '{"url": "/v", "duration": Infinity}'
    assert failed_fields(doc(videos=[json.loads(line)])) == ["videos[0].duration"]


def test_related_links():
    [link] = parse(doc(related=[{"title": "More", "url": "/news/2"}])).related
    assert link == RelatedLink("More", "https://news.example/news/2")


@pytest.mark.parametrize(
    "item, fields",
    [
        ({"url": "/a"}, ["related[0].title"]),
        ({"title": " ", "url": "/a"}, ["related[0].title"]),
        ({"title": "t"}, ["related[0].url"]),
        ({"title": "t", "url": "javascript:void(0)"}, ["related[0].url"]),
        ({}, ["related[0].title", "related[0].url"]),
    ],
)
def test_related_field_errors_carry_their_path(item, fields):
    assert failed_fields(doc(related=[item])) == fields


# ---- status -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, status", [(_DROP, "published"), (None, "published"), ("published", "published"),
                      ("deleted", "deleted")]
)
def test_status_accepted(value, status):
    assert parse(doc(status=value)).status == status


@pytest.mark.parametrize("value", ["draft", "Deleted", "", 1, True, ["deleted"]])
def test_status_rejected(value):
    assert failed_fields(doc(status=value)) == ["status"]


# ---- property: never any other exception --------------------------------------------------------

_FIELDS = [*MINIMAL, "updated", "summary", "body", "authors", "tags", "language", "images",
           "videos", "related", "status", "url", "type", "quality", "duration", "title"]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±Infinity included: json.loads accepts them
    | st.text(max_size=30)
    | st.sampled_from([*MINIMAL.values(), "/a", "hls", "HD", "deleted", "en",
                      "2017-12-11T10:00:00"])
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, database=None)
@given(value=_json | st.builds(lambda extra: {**MINIMAL, **extra},
                               st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=4)))
def test_any_json_value_gives_an_article_or_a_document_error(value):
    try:
        article = parse(value)
    except DocumentError as exc:
        assert exc.errors and all(isinstance(e, FieldError) and e.field for e in exc.errors)
    else:
        assert isinstance(article, Article)
        assert article.published.utcoffset().total_seconds() == 0


def test_lone_surrogates_are_dropped_from_text_and_refused_in_identifiers():
    """JSON can spell a lone surrogate ("\\ud800") that UTF-8, and so the store, cannot hold."""
    article = parse_article(doc(title="A\ud800B", body="<p>x\udfffy</p>", summary="s\ud83d"),
                            origin=ORIGIN, timezone=TEHRAN)
    assert (article.title, article.body, article.summary) == ("AB", "<p>xy</p>", "s")
    assert failed_fields(doc(url="/a\ud800")) == ["url"]
    assert failed_fields(doc(section="News/\ud800")) == ["section"]
    assert failed_fields(doc(tags=["ok", "t\udc00"])) == ["tags[1]"]
