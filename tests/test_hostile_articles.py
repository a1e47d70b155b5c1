"""Hostile article files through the real path — `Importer` (what `feedsvc import` runs), an
incremental refresh into the real Redis, the app over real HTTP: whatever each field holds,
every feed the refresh touched stays well-formed and schema-valid on every address, the index
and OPML stay well-formed, and every refused line is named `file:line: field: reason`.
Oversized values (a 10 MB body, 100,000 tags, 100,000 nested elements, a 40 MB line) are
refused with the limit they broke, without taking the importer's memory; values at the limits
go through and render."""

from __future__ import annotations

import dataclasses
import html
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import feedparser
import hypothesis
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from conftest import ROOT, LiveServer, own_prefix
from feedcheck import assert_valid
from feedsvc.build import FeedBuilder
from feedsvc.cache import RedisCache
from feedsvc.config import Settings, load_settings
from feedsvc.ingest.document import (
    MAX_BODY,
    MAX_HTML_DEPTH,
    MAX_HTML_TAGS,
    MAX_LIST,
    MAX_NAME,
    html_nesting,
    parse_article,
    shown_title,
)
from feedsvc.ingest.importer import MAX_LINE_BYTES, Importer, ImportReport
from feedsvc.model import section_slug, split_section
from feedsvc.refresh import Refresher
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.items import item_id, prepare
from feedsvc.store import Store
from feedsvc.urls import feed_url
from feedsvc.web import create_app
from reader_view import assert_nothing_executable, html_fields, reader_text, shown_text

# ---- what a publisher's file may hold -------------------------------------------------------

_BITS = [
    "<p>", "</p>", "<script>alert(1)</script>", '<a href="javascript:x()">', "</a>", "]]>",
    '<img src=x onerror="y()">', "<iframe src='//evil.example'>", "<![CDATA[", "<!--", "-->",
    "&", "&#0;", "&#xD800;", "&bogus;", "<", ">", '"', "<style>*{}</style>", "<svg onload=1>",
    '<a href="/relative">', "<b><i>unclosed", "\ufffe", "\U0001f600", "\u202e", "\u2028",
    "<math><mi xlink:href='javascript:1'>", "<form action=//evil.example>", "<div>" * 40,
    "</div>" * 60, "<table><tr><td>", "<base href='//evil.example/'>", "\\", "%00", "\ufeff",
]
_CONTROLS = ["\x00", "\x0b", "\x1b[31m", "\ud800", "\r\n", "\x7f"]
# One-line text (names, credits, ids) refuses control characters; the others drop them.
LINE_TEXT = st.lists(st.sampled_from(_BITS) | st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), max_size=20), max_size=6).map("".join)
TEXT = st.lists(st.sampled_from(_BITS + _CONTROLS) | st.text(max_size=20)
                | st.text(st.characters(codec="utf-8"), max_size=20), max_size=8).map("".join)
JUNK = (st.none() | st.booleans() | st.integers() | st.floats()
        | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3),
                                                                 st.integers(), max_size=2))
GOOD_URL = st.sampled_from(["/news/a", "https://news.example/news/b", "/π/ü?q=<>&x=\"",
                            "https://elsewhere.example/c?d=1&e=<f>", "https://news-mirror.example/e",
                            "/a#frag", " /padded ", "HTTPS://NEWS.EXAMPLE/UPPER"])
GOOD_DATE = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1),
                         timezones=st.sampled_from([UTC, None])).map(datetime.isoformat)
IMAGE = st.fixed_dictionaries({"url": GOOD_URL}, optional={
    "caption": TEXT, "credit": LINE_TEXT, "width": st.integers(0, 10**6),
    "height": st.integers(0, 10**6), "type": st.sampled_from(["image/jpeg", "image/svg+xml"])})
VIDEO = st.fixed_dictionaries({"url": GOOD_URL}, optional={
    "type": st.sampled_from(["mp4", "hls", "dash"]),
    "quality": st.sampled_from(["SD", "HD", "FHD", "UHD"]),
    "duration": st.integers(0, 10**9) | st.floats(0, 10**9), "thumbnail": GOOD_URL})
GOOD = st.fixed_dictionaries(
    {"id": LINE_TEXT.map(lambda text: "id " + text),
     "url": GOOD_URL,
     "section": st.sampled_from(["Fuzz", "Fuzz/Deep", ["Fuzz", "Ünïcode & <b>co</b>"],
                                 "News / Turkey", "Fuzz/ spaced /Name", ["Fuzz", "π"]]),
     "title": TEXT.map(lambda text: "T " + text),
     "published": GOOD_DATE},
    optional={
        "updated": GOOD_DATE, "summary": TEXT, "body": TEXT, "authors": st.lists(LINE_TEXT,
                                                                                 max_size=3),
        "tags": st.lists(LINE_TEXT, max_size=4), "language": st.sampled_from(["en", "fa-IR"]),
        "images": st.lists(IMAGE, max_size=2), "videos": st.lists(VIDEO, max_size=2),
        "related": st.lists(st.fixed_dictionaries({"title": TEXT.map(lambda t: "R " + t),
                                                   "url": GOOD_URL}), max_size=2),
        "status": st.sampled_from(["published", "deleted"]), "x-publisher-field": JUNK,
    },
)
BAD_URL = st.sampled_from([
    "javascript:alert(1)", "//evil.example/x", "http://", "https://[::1", "ftp://news.example/f",
    "http://exa mple.com/", "data:text/html,<b>", "https://news.example/" + "x" * 2100, "",
    "/a\x00b"]) | JUNK
BAD_DATE = st.sampled_from(["2026-13-45T99:99:99Z", "0001-01-01T00:00:00+14:00", "yesterday",
                            "9999-12-31T23:59:59-14:00", "2026-11-20", "2026-11-20T10:00+25:00",
                            "2026-11-20T10:00:00.1234567890Z", ""]) | JUNK
BAD_NAMES = (st.lists(st.sampled_from(_CONTROLS) | JUNK, min_size=1, max_size=3)
             | st.just(["t"] * (MAX_LIST + 1)) | st.just(["n" * (MAX_NAME + 1)]) | JUNK)
BAD_OBJECTS = (st.lists(st.fixed_dictionaries({"url": BAD_URL}), min_size=1, max_size=2)
               | st.lists(JUNK, min_size=1, max_size=2) | JUNK)
# Per field, values that break its rule.
BAD = {
    "id": st.sampled_from(["", "  ", "i" * 201, "a\x00b", "\ud800", "line\nbreak"]) | JUNK,
    "url": BAD_URL,
    "section": st.sampled_from(["", "/", "Fuzz//x", ["a"] * 9, [], "---", "Fuzz/\x00",
                                ["Fuzz", 5]]) | JUNK,
    "title": st.sampled_from(["", " \n ", "t" * 1001]) | JUNK,
    "published": BAD_DATE, "updated": BAD_DATE,
    "summary": st.just("s" * 10_001) | JUNK.filter(lambda v: v is not None),
    "body": st.sampled_from(["<div>" * (MAX_HTML_DEPTH + 1), "<b>" * (MAX_HTML_TAGS + 1)])
    | JUNK.filter(lambda v: v is not None),
    "authors": BAD_NAMES, "tags": BAD_NAMES,
    "language": st.sampled_from(["x", "<b>", "en_US", "e" * 40]) | JUNK.filter(bool),
    "images": BAD_OBJECTS, "videos": BAD_OBJECTS, "related": BAD_OBJECTS,
    "status": st.sampled_from(["DELETED", "draft", ""]) | JUNK.filter(bool),
}


@st.composite
def articles(draw) -> dict:
    """A document whose text is hostile throughout; one time in three a field breaks its rule
    too (or a required one is missing)."""
    doc = draw(GOOD)
    if draw(st.integers(0, 2)) == 0:
        field = draw(st.sampled_from(sorted(BAD)))
        if draw(st.integers(0, 5)) == 0:
            doc.pop(field, None)
        else:
            doc[field] = draw(BAD[field])
    return doc


# Lines that are no article at all; each is refused as a whole line.
NOT_ARTICLES = st.sampled_from([b"{", b"not json", b"\xff\xfe{}", b"[]", b"5", b"null",
                                b'"a string"', b'{"id": "x", "id": ', b"\x00" * 10])
LINE = st.one_of(articles().map(lambda doc: json.dumps(doc).encode()),
                 articles().map(lambda doc: json.dumps(doc, ensure_ascii=False).encode(
                     "utf-8", "surrogatepass")),  # a lone surrogate: not UTF-8
                 articles().map(lambda doc: json.dumps(doc).encode()),
                 NOT_ARTICLES, st.just(b""))

# ---- the service ----------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    settings: Settings
    store: Store
    refresher: Refresher
    server: LiveServer
    files: Path
    imports: int = 0

    def import_lines(self, lines: list[bytes]) -> tuple[Path, ImportReport, list[str]]:
        """`lines` as a JSON Lines file through the importer; the file, the report and the
        error lines."""
        self.imports += 1
        path = self.files / f"import-{self.imports}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        errors = io.StringIO()
        report = Importer(self.settings, self.store, errors=errors,
                          progress=False).import_paths([path])
        return path, report, errors.getvalue().splitlines()

    def get(self, url: str) -> requests.Response:
        """`url` (on any address) from the test server, with its Host. A feed's URL is a URI
        already (its non-ASCII slug percent-encoded), sent as it is."""
        parts = urlsplit(url)
        return requests.get(f"{self.server.url}{parts.path}",
                            headers={"Host": parts.netloc}, timeout=30)


@pytest.fixture(scope="module")
def site(tmp_path_factory, redis_client) -> Iterator[Site]:
    """An empty SQLite store, a Redis prefix of this module's own, the app on a test server
    reading Redis on every request (no in-process copies to wait for)."""
    tmp = tmp_path_factory.mktemp("hostile-articles")
    prefixes = own_prefix(redis_client)
    settings = dataclasses.replace(load_settings(ROOT / "config" / "feedsvc.toml", environ={}),
                                   database_url=f"sqlite:///{tmp / 'store.sqlite3'}")
    store = Store(settings.database_url)
    cache = RedisCache(redis_client, next(prefixes))
    server = LiveServer(create_app(settings, store, cache, near_cache=False))
    refresher = Refresher(FeedBuilder(settings, store, cache))
    refresher.full()
    try:
        yield Site(settings, store, refresher, server, tmp)
    finally:
        server.stop()
        store.close()
        prefixes.close()


_ERROR = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<field>[^\s:][^:]*): (?P<reason>\S.*)$")


def rejections(path: Path, errors: list[str]) -> dict[int, list[tuple[str, str]]]:
    """The error lines as {line number: [(field, reason)]}, after checking each names `path`."""
    out: dict[int, list[tuple[str, str]]] = {}
    for error in errors:
        match = _ERROR.match(error)
        assert match and match["file"] == str(path), error
        out.setdefault(int(match["line"]), []).append((match["field"], match["reason"]))
    return out


def assert_served_valid(site: Site, urls: tuple[str, ...]) -> None:
    """Each feed URL (canonical and first mirror; the other mirror is rendered alike) and the
    site documents answer 200 with a valid document, with nothing executable in any field a
    reader renders as HTML."""
    addresses = site.settings.addresses[:2]
    for url in urls:
        if any(url.startswith(address + "/") for address in addresses):
            response = site.get(url)
            assert response.status_code == 200, url
            filename = url.rsplit("/", 1)[1]
            assert_valid(filename, response.content, url)
            for fragment in html_fields(filename, response.content):
                assert_nothing_executable(fragment, url)
    for address in addresses:
        opml = site.get(f"{address}/feeds.opml")
        assert opml.status_code == 200
        etree.fromstring(opml.content)
        assert site.get(f"{address}/").status_code == 200


# ---- the properties -------------------------------------------------------------------------


@hypothesis.settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow,
                                            hypothesis.HealthCheck.large_base_example])
@given(lines=st.lists(LINE, min_size=1, max_size=4))
@pytest.mark.long
def test_any_article_file_gives_valid_feeds_and_named_rejections(site, lines):
    path, report, errors = site.import_lines(lines)
    refused = rejections(path, errors)
    numbered = [n for n, line in enumerate(lines, start=1) if line.strip()]
    assert report.accepted + report.rejected == len(numbered)
    assert len(refused) == report.rejected and set(refused) <= set(numbered)
    for n, line in enumerate(lines, start=1):
        if (line.strip() and not line.startswith(b"{")) or line.startswith(b'{"id": "x", "id'):
            assert [field for field, _ in refused[n]] == ["(line)"], (line, refused.get(n))
    refresh = site.refresher.incremental()
    hypothesis.event(f"accepted {report.accepted}, feeds {len(refresh.changed_urls)}")
    assert_served_valid(site, refresh.changed_urls)


# ---- oversized values -----------------------------------------------------------------------

def _doc(n: int, **fields) -> bytes:
    return json.dumps({"id": f"big-{n}", "url": f"/fuzz/big-{n}", "section": "Fuzz/Big",
                       "title": f"Big {n}", "published": "2026-11-25T10:00:00Z",
                       **fields}).encode()


NESTED = "<div>" * 100_000 + "x" + "</div>" * 100_000
MISNESTED = "<b><div></b>" * 7_000  # a parser keeps every <div> open: nesting it misses


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"body": "x" * 10_000_000}, "body",
     f"is 10000000 characters long, the limit is {MAX_BODY}"),
    ({"tags": ["tag"] * 100_000}, "tags", f"has 100000 entries, the limit is {MAX_LIST}"),
    ({"body": NESTED}, "body", f"nests HTML elements 100000 deep, the limit is {MAX_HTML_DEPTH}"),
    ({"body": MISNESTED}, "body", f"has 21000 HTML tags, the limit is {MAX_HTML_TAGS}"),
    ({"images": [{"url": "/i.jpg"}] * 100_000}, "images",
     f"has 100000 entries, the limit is {MAX_LIST}"),
    ({"authors": ["a" * 1_000_000]}, "authors[0]",
     f"is 1000000 characters long, the limit is {MAX_NAME}"),
], ids=["10 MB body", "100,000 tags", "100,000 nested divs", "misnested tags", "100,000 images",
        "1 MB author"])
def test_oversized_values_are_refused_with_the_limit_and_the_rest_imported(site, fields, field,
                                                                            reason):
    started = time.perf_counter()
    path, report, errors = site.import_lines([_doc(1), _doc(2, **fields), _doc(3)])
    assert time.perf_counter() - started < 10
    assert (report.accepted, report.rejected) == (2, 1)
    assert rejections(path, errors) == {2: [(field, reason)]}


def test_a_line_over_the_limit_is_refused_unread(site):
    huge = json.dumps({"id": "huge", "body": "x" * (MAX_LINE_BYTES + 1000)}).encode()
    path, report, errors = site.import_lines([_doc(4), huge, _doc(5)])
    assert (report.accepted, report.rejected) == (2, 1)
    assert rejections(path, errors) == {
        2: [("(line)", f"is {len(huge) + 1} bytes long, the limit is {MAX_LINE_BYTES}")]}


@pytest.mark.long
def test_an_article_at_every_limit_renders_and_serves_in_bounded_time(site):
    """The largest document the rules allow: a 2 MB body at the nesting and tag limits, full
    lists of the longest names; every feed that carries it stays valid and quick."""
    unit = "<div>" * (MAX_HTML_DEPTH - 1) + "<p>deep</p>" + "</div>" * (MAX_HTML_DEPTH - 1)
    body = unit * ((MAX_HTML_TAGS - 2) // (2 * MAX_HTML_DEPTH))  # and a <p> below
    body += "<p>" + "w " * ((MAX_BODY - len(body) - 10) // 2) + "</p>"
    names = ["n" * MAX_NAME] * MAX_LIST
    doc = _doc(6, body=body, tags=names, authors=names,
               images=[{"url": f"/i/{n}.jpg", "caption": "c" * 10_000} for n in range(MAX_LIST)],
               related=[{"title": "r" * 1000, "url": f"/r/{n}"} for n in range(MAX_LIST)])
    _, report, errors = site.import_lines([doc])
    assert (report.accepted, errors) == (1, [])
    started = time.perf_counter()
    refresh = site.refresher.incremental()
    assert time.perf_counter() - started < 45  # 100,000 nested divs took 45 s for one body
    assert any("/feeds/fuzz/big/" in url for url in refresh.changed_urls)
    assert_served_valid(site, refresh.changed_urls)


@pytest.mark.parametrize(("html", "tags", "depth"), [
    ("<p>a</p>" * 200, 400, 1),
    ("<ul>" + "<li>item" * 300 + "</ul>", 302, 2),  # <li> closes the open <li>
    ("<p>" + "<br><img src=x>" * 100 + "</p>", 202, 1),  # void elements open nothing
    ("<div>" * 150 + "</span>" * 150, 300, 150),  # an end tag of nothing open closes nothing
    ("<div><b>" * 60 + "</div>" * 60, 180, 120),
    ("<table>" + "<tr><td>x<td>y" * 200 + "</table>", 602, 3),  # <tr> closes cell and row
    ("<dl>" + "<dt>t<dd>d" * 100 + "</dl>", 202, 2),
])
def test_the_nesting_estimate_follows_what_an_html_parser_keeps_open(html, tags, depth):
    assert html_nesting(html) == (tags, depth)


# ---- what readers are shown -----------------------------------------------------------------

PWN = "window.__pwned=1"
# Text a publisher may write anywhere, which a reader must show as written.
MARKUP_TEXT = [
    f"<script>{PWN}</script><b onmouseover={PWN}>s</b>",
    "Profits < forecast & shares fall",
    "&copy; &amp; &#169; &#x26; AT&T",
    f"<img src=x onerror={PWN}>",
    "Why <b>bold</b> matters",
    "a ]]> b <!-- c --> d",
    "&#x1; &#xFFFE; &#0; written out",
]
_VIDEO = {"url": "/v/clip.mp4", "duration": 60, "thumbnail": "/v/clip.jpg"}


def _reader_case(name: str, minute: int = 0, **fields) -> dict:
    """An article in its own section under Readers/, with a video so that Roku lists it too."""
    return {"id": f"reader-{name}", "url": f"/readers/{name}?a=1&b=2",
            "section": ["Readers", name], "title": f"Title of {name}",
            "published": f"2026-11-27T10:{minute:02}:00Z", "videos": [_VIDEO], **fields}


READER_CASES = [
    _reader_case("markup-summary", 1, title=MARKUP_TEXT[4], summary=MARKUP_TEXT[0],
                 body="<p>ok</p>"),
    _reader_case("profits", 2, title=MARKUP_TEXT[1], summary=MARKUP_TEXT[1],
                 body="<p>Profits &lt; forecast &amp; shares fall</p>"),
    _reader_case("entities", 3, title=MARKUP_TEXT[2], summary=MARKUP_TEXT[6],
                 body="<p>&copy; &nbsp; &#0; &bogus; &#xD800;</p>"),
    _reader_case("section-markup", 4, section=["Readers", MARKUP_TEXT[3]],
                 title=MARKUP_TEXT[5], summary=MARKUP_TEXT[3]),
    _reader_case("illegal-references", 5, body="<p>a&#xFFFE;b&#x1;c&#xFFFF;d&#x85;e&#x9F;f</p>"),
    _reader_case("c1-and-noncharacters", 6, title="C1 \x85 and \ufdd0 noncharacters \U0001fffe",
                 summary="s\x85t\x96u\ufffev", body="<p>x\x85y\x96z\ufffe\U0010ffff</p>"),
    _reader_case("title-only", 12),
    # No summary: feedparser takes a media:description for the item's summary.
    _reader_case("labels", 14, body="<p>x</p>",
                 images=[{"url": "/i/a.jpg?x=1&y=2", "caption": MARKUP_TEXT[0],
                          "credit": "AFP & <i>Reuters</i>"}],
                 tags=["<b>tag</b>", "A & B", f"<script>{PWN}</script>"],
                 related=[{"title": "Read <b>more</b> & more", "url": "/readers/other?a=1&b=2"}]),
    _reader_case("summary-only", 7, summary="Just a summary & <i>nothing</i> else"),
    _reader_case("invalid-html", 8, summary="fine",
                 body="<p>unclosed <b><i>x</b> <table><tr><td>c</p><div>d<span>e"),
    _reader_case("hostile-body", 9, summary="plain",
                 body=f"<p>&lt;script&gt;{PWN}&lt;/script&gt; shown</p><script>{PWN}</script>"
                      f"<img src=x onerror=\"{PWN}\"><a href=\"javascript:{PWN}\">link</a>"
                      f"<iframe src=\"data:text/html,<script>{PWN}</script>\"></iframe>"),
    _reader_case("long-title", 10, title="<b>Long</b> & " + "word " * 190, summary="short"),
    _reader_case("authors", 11, summary="by line",
                 authors=["Jane Doe <jane@example.org>", MARKUP_TEXT[4],
                          f"<script>{PWN}</script>"]),
]


@dataclasses.dataclass
class Reading:
    """One article's section feed in every format on one address."""

    address: str
    documents: dict[str, bytes]

    def rss_item(self, article_url: str):
        return _entry(feedparser.parse(self.documents["rss.xml"]), article_url)

    def atom_entry(self, article_url: str):
        return _entry(feedparser.parse(self.documents["atom.xml"]), article_url)

    def json_item(self, article_url: str) -> dict:
        items = json.loads(self.documents["feed.json"])["items"]
        return next(i for i in items if urlsplit(i["url"]).path == urlsplit(article_url).path)


def _entry(parsed, article_url: str):
    path = urlsplit(article_url).path
    return next(e for e in parsed.entries if urlsplit(e.link).path == path)


def read_article_feeds(site: Site, doc: dict) -> list[Reading]:
    """`doc` imported and refreshed; its section feed in every format, on the canonical address
    and a mirror, each checked valid, carrying the article, and with nothing executable in any
    field a reader renders as HTML."""
    _, report, errors = site.import_lines([json.dumps(doc).encode()])
    assert (report.accepted, errors) == (1, []), errors
    site.refresher.incremental()
    names = doc["section"] if isinstance(doc["section"], list) else split_section(doc["section"])
    uuid = UUID(item_id(doc["id"]).removeprefix("urn:uuid:"))  # each format's item id
    readings = []
    for address in site.settings.addresses[:2]:
        documents = {}
        for filename in ("rss.xml", "atom.xml", "feed.json", "roku.json"):
            url = feed_url(address, section_slug(names), filename)
            response = site.get(url)
            assert response.status_code == 200, url
            assert_valid(filename, response.content, url)
            assert uuid.hex.encode() in response.content.replace(b"-", b""), (url, "missing")
            for fragment in html_fields(filename, response.content):
                assert_nothing_executable(fragment, url)
            documents[filename] = response.content
        readings.append(Reading(address, documents))
    return readings


def assert_shown_as_written(site: Site, doc: dict) -> None:
    """The article's plain text, as feedparser reads RSS and Atom and as the JSON Feed has it,
    is what the publisher wrote (after the documented normalisation)."""
    for reading in read_article_feeds(site, doc):
        where = (reading.address, doc["id"])
        rss, atom, item = (reading.rss_item(doc["url"]), reading.atom_entry(doc["url"]),
                           reading.json_item(doc["url"]))
        title = shown_text(shown_title(doc["title"].strip()))  # a long one is cut at a word
        assert reader_text(rss.title_detail) == title, where
        assert reader_text(atom.title_detail) == title, where
        assert item["title"] == title, where
        if shown_text(doc.get("summary") or ""):
            summary = shown_text(doc["summary"])
            assert reader_text(rss.summary_detail) == summary, where
            assert reader_text(atom.summary_detail) == summary, where
            assert item["summary"] == summary, where
        section = shown_text(doc["section"][-1])
        for parsed in (feedparser.parse(reading.documents[f]) for f in ("rss.xml", "atom.xml")):
            assert reader_text(parsed.feed.title_detail).endswith(f": {section}"), where


@pytest.mark.parametrize("doc", READER_CASES, ids=[d["id"] for d in READER_CASES])
def test_readers_show_odd_articles_as_written_with_nothing_executable(site, doc):
    assert_shown_as_written(site, doc)


def render_alone(settings: Settings, doc: dict) -> dict[str, bytes]:
    """`doc`'s feed alone, rendered with `settings`, on the canonical address, by format."""
    item = prepare(parse_article(doc, origin=settings.origin, timezone=settings.timezone))
    documents = FeedDocuments(settings).render(FeedSpec("readers", "Readers", "Readers"), [item])
    return {fmt.filename: body for (address, fmt), body in documents.items()
            if address == settings.origin}


def test_an_author_with_an_address_is_a_name_and_an_email_in_atom_and_a_name_elsewhere(site):
    [doc] = [case for case in READER_CASES if case["id"] == "reader-authors"]
    names = ["Jane Doe", "Why bold matters"]  # markup in a name: its text; none left: no author
    for reading in read_article_feeds(site, doc):
        atom = etree.fromstring(reading.documents["atom.xml"])
        authors = atom.iterfind("{*}entry/{*}author")  # feedparser mixes up their emails
        assert [(a.findtext("{*}name"), a.findtext("{*}email")) for a in authors] == [
            ("Jane Doe", "jane@example.org"), ("Why bold matters", None)]
        rss = etree.fromstring(reading.documents["rss.xml"])
        assert [e.text for e in rss.iter("{http://purl.org/dc/elements/1.1/}creator")] == names
        assert rss.find("channel/item/author") is None
        assert [a["name"] for a in reading.json_item(doc["url"])["authors"]] == names
        for filename in ("rss.xml", "feed.json", "roku.json"):
            assert b"jane@example.org" not in reading.documents[filename], filename
    with_emails = render_alone(dataclasses.replace(site.settings, author_emails=True), doc)
    rss = etree.fromstring(with_emails["rss.xml"])
    assert rss.findtext("channel/item/author") == "jane@example.org (Jane Doe)"


def test_captions_show_as_written_and_markup_in_labels_is_reduced_to_its_text(site):
    """A photo caption is text typed html in Media RSS; tags, credits and link titles, which
    feeds carry where no reader renders HTML, keep the text of any markup the CMS left in."""
    [doc] = [case for case in READER_CASES if case["id"] == "reader-labels"]
    for reading in read_article_feeds(site, doc):
        rss = etree.fromstring(reading.documents["rss.xml"])
        [caption] = rss.iter("{http://search.yahoo.com/mrss/}description")
        assert caption.get("type") == "html"
        assert html.unescape(caption.text) == doc["images"][0]["caption"]
        assert rss.findtext(".//{http://search.yahoo.com/mrss/}credit") == "AFP & Reuters"
        assert [c.text for c in rss.iterfind("channel/item/category")] == ["tag", "A & B"]
        assert reading.json_item(doc["url"])["tags"] == ["tag", "A & B"]
        atom = etree.fromstring(reading.documents["atom.xml"])
        assert [link.get("title") for link in atom.iterfind("{*}entry/{*}link[@rel='related']")
                ] == ["Read more & more"]


def test_each_normalisation_is_logged_with_the_article(caplog):
    settings = load_settings(ROOT / "config" / "feedsvc.toml", environ={})
    cases = {case["id"]: case for case in READER_CASES}
    caplog.set_level(logging.WARNING, logger="feedsvc.render")
    for name in ("reader-c1-and-noncharacters", "reader-illegal-references", "reader-labels"):
        prepare(parse_article(cases[name], origin=settings.origin, timezone=settings.timezone))
    assert [r.getMessage() for r in caplog.records] == [
        "body of https://news.example/readers/c1-and-noncharacters?a=1&b=2: 4 characters and 0 "
        "character references to characters a feed cannot carry (controls, noncharacters) "
        "removed",
        "article reader-c1-and-noncharacters normalised for the feeds: summary: 3 characters a "
        "feed cannot carry (controls, noncharacters) removed; title: 3 characters a feed cannot "
        "carry (controls, noncharacters) removed",
        "body of https://news.example/readers/illegal-references?a=1&b=2: 0 characters and 3 "
        "character references to characters a feed cannot carry (controls, noncharacters) "
        "removed",
        "article reader-labels normalised for the feeds: tags: markup reduced to its text; "
        "images.credit: markup reduced to its text; related.title: markup reduced to its text",
    ]


def test_an_atom_entry_with_no_body_and_no_summary_shows_its_title():
    """Without the mirror footer an article with only a title would be an Atom entry with no
    text at all (the W3C validator's MissingTextualContent): its title is its summary."""
    settings = dataclasses.replace(load_settings(ROOT / "config" / "feedsvc.toml", environ={}),
                                   mirror_footer=False)
    doc = _reader_case("bare", 13, title="Only <a> title & nothing else")
    atom = render_alone(settings, doc)["atom.xml"]
    assert_valid("atom.xml", atom)
    [entry] = feedparser.parse(atom).entries
    assert "content" not in entry
    assert reader_text(entry.summary_detail) == doc["title"]


_READER_TEXT = st.lists(st.sampled_from(MARKUP_TEXT) | st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), max_size=15), min_size=1,
    max_size=4).map("".join).filter(lambda text: shown_text(text) != "")


@hypothesis.settings(max_examples=15, deadline=None, derandomize=True,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@given(title=_READER_TEXT, summary=_READER_TEXT, section=_READER_TEXT, author=_READER_TEXT)
@pytest.mark.long
def test_readers_show_any_plain_text_as_written(site, title, summary, section, author):
    doc = _reader_case("generated", title=title, summary=summary, authors=[author])
    # A "/" in a section name given as a list splits it in the catalog (a known gap).
    doc["section"] = ["Readers", section.replace("/", " ")]
    assert_shown_as_written(site, doc)


# ---- in a browser ---------------------------------------------------------------------------

# Whatever a payload could be waiting for: a hover, a click on a link that is not http(s).
_PROVOKE = """() => {
    for (const e of document.body.querySelectorAll('*')) {
        for (const type of ['mouseover', 'focus', 'load', 'error']) {
            e.dispatchEvent(new Event(type));
        }
    }
    for (const a of document.querySelectorAll('a[href]')) {
        if (!/^https?:/i.test(a.getAttribute('href'))) a.click();
    }
}"""


def shown_in_browser(browser, fragment: str) -> tuple[object, list[str], str]:
    """`fragment` loaded as a page's HTML, with every request refused: the `window.__pwned`
    flag a payload would set, the dialogs opened, and the page's visible text (the mirror
    footer, ours rather than the publisher's, left out) on one line."""
    page = browser.new_page()
    try:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.route("**/*", lambda route: route.abort())
        page.set_content(f"<!doctype html><meta charset=utf-8><body>{fragment}</body>")
        page.evaluate(_PROVOKE)
        page.wait_for_timeout(200)
        pwned = page.evaluate("window.__pwned")
        text = page.evaluate("document.querySelector('p.mirrors')?.remove(),"
                             " document.body.innerText")
        return pwned, dialogs, " ".join(text.split())
    finally:
        page.close()


def test_a_browser_shows_rss_descriptions_and_json_content_as_text_and_runs_nothing(site,
                                                                                      browser):
    [summary_case, body_case] = [case for case in READER_CASES
                                 if case["id"] in ("reader-markup-summary", "reader-hostile-body")]
    for reading in read_article_feeds(site, summary_case):
        [description] = [
            item.findtext("description")
            for item in etree.fromstring(reading.documents["rss.xml"]).iterfind("channel/item")
            if urlsplit(item.findtext("link")).path == urlsplit(summary_case["url"]).path]
        assert shown_in_browser(browser, description) == (None, [], summary_case["summary"])
    for reading in read_article_feeds(site, body_case):
        content = reading.json_item(body_case["url"])["content_html"]
        assert shown_in_browser(browser, content) == (
            None, [], f"<script>{PWN}</script> shown link")
