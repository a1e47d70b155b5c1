"""Property: whatever text an article carries — any Unicode, control characters, broken or
hostile HTML — every format on every address stays well-formed and schema-valid, and nothing
executable or foreign-hosted from the body survives sanitising."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import hypothesis
import lxml.html
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from conftest import ROOT
from feedcheck import assert_valid
from feedsvc.config import load_settings
from feedsvc.ingest.document import DocumentError, parse_article
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.items import prepare

SITE = load_settings(ROOT / "config" / "feedsvc.toml", environ={})
SPEC = FeedSpec("news", "Example News: News", "All news stories.")
DOCUMENTS = FeedDocuments(SITE)

HTML_BITS = st.sampled_from([
    "<p>", "</p>", "<script>alert(1)</script>", '<a href="javascript:x()">', "</a>",
    '<img src=x onerror="y()">', "<iframe src='//evil.example'>", "]]>", "<![CDATA[", "<!--",
    "-->", "&", "&amp;", "&#0;", "&#xD800;", "<", ">", '"', "<style>*{}</style>", "<svg onload=1>",
    '<a href="/relative">', "<b><i>unclosed", "\x00", "\x0b", "\ufffe", "\U0001f600", "\u202e",
    '<div style="x">', "<math><mi xlink:href='javascript:1'>", "<form action=//evil.example>",
])
TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.text(max_size=40)
HOSTILE = st.lists(HTML_BITS | TEXT, max_size=12).map("".join)


@hypothesis.settings(max_examples=120, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@given(title=HOSTILE, summary=HOSTILE, body=HOSTILE, tag=HOSTILE, author=HOSTILE,
       caption=HOSTILE, related_title=HOSTILE)
def test_any_article_text_gives_valid_feeds(title, summary, body, tag, author, caption,
                                            related_title):
    try:
        article = parse_article({
            "id": "prop-1", "url": "/news/prop-1", "section": "News",
            "title": title or "x", "published": "2026-11-01T10:00:00Z",
            "summary": summary, "body": body, "tags": [tag], "authors": [author],
            "images": [{"url": "/i.jpg", "caption": caption, "credit": "AFP"}],
            "videos": [{"url": "https://v.example.org/a.mp4", "duration": 30,
                        "thumbnail": "/t.jpg"}],
            "related": [{"title": related_title or "x", "url": "/news/other"}],
        }, origin=SITE.origin, timezone=SITE.timezone)
    except DocumentError as exc:
        # Refused input must be refused for a stated reason on a named field.
        assert exc.errors and all(e.field and e.reason for e in exc.errors)
        return
    for (origin, fmt), body_bytes in DOCUMENTS.render(SPEC, [prepare(article)]).items():
        assert_valid(fmt.filename, body_bytes, (origin, fmt.filename))
        for html in _html_bodies(fmt.filename, body_bytes):
            _assert_harmless(html)


def _html_bodies(filename: str, body: bytes) -> list[str]:
    """The HTML each format carries as text: content:encoded, Atom content, content_html."""
    if filename == "feed.json":
        return [item["content_html"] for item in json.loads(body)["items"]]
    if filename.endswith(".xml"):
        return etree.fromstring(body).xpath(
            "//*[local-name()='encoded' or local-name()='content'][not(@url)]/text()")
    return []


def _assert_harmless(html: str) -> None:
    if not html.strip():
        return
    tree = lxml.html.fragment_fromstring(html, create_parent="div")
    assert not tree.xpath("//script | //style | //iframe | //form | //svg | //math"), html
    for element in tree.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), html
            assert name.lower() != "style", html
            if name in ("href", "src"):
                assert value.startswith(("https://", "http://", "mailto:")), html
                assert "evil.example" not in value, html


def test_items_without_optional_fields_render_everywhere():
    article = parse_article({"id": "bare", "url": "https://elsewhere.example/x",
                             "section": "News", "title": "Bare",
                             "published": datetime(2026, 1, 1, tzinfo=UTC).isoformat()},
                            origin=SITE.origin, timezone=SITE.timezone)
    for (_origin, fmt), body in DOCUMENTS.render(SPEC, [prepare(article)]).items():
        assert_valid(fmt.filename, body)
