"""Hostile article files through the real path — `Importer` (what `feedsvc import` runs), an
incremental refresh into the real Redis, the app over real HTTP: whatever each field holds,
every feed the refresh touched stays well-formed and schema-valid on every address, the index
and OPML stay well-formed, and every refused line is named `file:line: field: reason`.
Oversized values (a 10 MB body, 100,000 tags, 100,000 nested elements, a 40 MB line) are
refused with the limit they broke, without taking the importer's memory; values at the limits
go through and render."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import hypothesis
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from conftest import ROOT, LiveServer, own_prefix
from feedcheck import assert_valid
from feedsvc.cache import RedisCache
from feedsvc.config import Settings, load_settings
from feedsvc.ingest.document import (
    MAX_BODY,
    MAX_HTML_DEPTH,
    MAX_HTML_TAGS,
    MAX_LIST,
    MAX_NAME,
    html_nesting,
)
from feedsvc.ingest.importer import MAX_LINE_BYTES, Importer, ImportReport
from feedsvc.refresh import FeedRenderer, Refresher
from feedsvc.store import Store
from feedsvc.web import create_app

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
        """`url` (on any address) from the test server, with its Host."""
        parts = urlsplit(url)
        return requests.get(f"{self.server.url}{quote(parts.path)}",
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
    refresher = Refresher(FeedRenderer(settings, store, cache))
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
    site documents answer 200 with a valid document."""
    addresses = site.settings.addresses[:2]
    for url in urls:
        if any(url.startswith(address + "/") for address in addresses):
            response = site.get(url)
            assert response.status_code == 200, url
            assert_valid(url.rsplit("/", 1)[1], response.content, url)
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
