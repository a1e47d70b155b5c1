"""The plain-text page importer, on the publisher's sample page and on small synthetic pages."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import lxml.etree
import lxml.html
import pytest

from conftest import SAMPLE_PAGE
from feedsvc.ingest.document import DocumentError, Normalised, parse_article
from feedsvc.ingest.pagetext import looks_like_page_text, parse_page
from feedsvc.render.items import prepare

ORIGIN = "https://news.example"
TEHRAN = ZoneInfo("Asia/Tehran")
HEADLINE = "Putin, Erdogan warn over escalating al-Quds tensions"

SYNTHETIC = """\ufeff

World / Middle East

Gaza truce holds for a second day


A photo taken on June 2 shows the crossing. (Photo by Reuters)

First paragraph, with <b>markup</b> & an ampersand.
It is wrapped over two lines.



Read More:

Gaza truce holds for a second day

Last paragraph.

Example News website can also be accessed at the following alternate addresses:

www.example.org

Example News Roku
"""


def sample_text() -> str:
    return SAMPLE_PAGE.read_text(encoding="utf-8")


def to_article(text: str, published: str = "2017-12-11T20:00:00"):
    return parse_article(parse_page(text, published=published), origin=ORIGIN, timezone=TEHRAN)


def fragments(body: str) -> list[lxml.html.HtmlElement]:
    lxml.etree.fromstring(f"<div>{body}</div>")  # strict XML parse: well-formed, nothing unclosed
    return lxml.html.fragments_fromstring(body)


def test_sample_page_fields():
    article = to_article(sample_text())
    assert article.section == ("News", "Turkey")
    assert article.title == HEADLINE
    assert (
        article.url == f"{ORIGIN}/news/turkey/putin-erdogan-warn-over-escalating-al-quds-tensions"
    )
    assert article.published == datetime(2017, 12, 11, 16, 30, tzinfo=UTC)
    assert article.images == ()
    assert article.summary is None  # the renderers derive it from the first paragraph
    assert prepare(article).summary.startswith("Turkish President Recep Tayyip Erdogan has said")
    assert article.id.startswith("page-")


def captions(body: str) -> list[str]:
    return [p.text_content() for p in fragments(body) if p.get("class") == "caption"]


def test_sample_lead_caption_is_a_caption_paragraph_with_the_page_credit():
    """No image URL on the page: no `<figure>` (readers would show an empty figure and a bare
    "AFP"), but the caption as a paragraph in the page's own words."""
    body = to_article(sample_text()).body
    parts = fragments(body)
    assert all(part.tag == "p" for part in parts)
    assert "<figure" not in body
    lead = parts[0]
    assert lead.get("class") == "caption"
    assert lead.text_content().startswith("Russia's Russian S-400 Triumph")
    assert lead.text_content().endswith("May 3, 2017. (Photo by AFP)")


def test_sample_body_has_paragraphs_and_no_site_chrome():
    text = sample_text()
    body = to_article(text).body
    paragraphs = [p.text_content() for p in fragments(body) if p.get("class") != "caption"]
    assert any(p.startswith("Erdogan made the remark") for p in paragraphs)
    assert paragraphs[-1].startswith("Palestinians have repeatedly warned Trump")
    assert [c for c in captions(body) if "(Photo by" in c] == [captions(body)[0]]
    for chrome in (
        "Read More",
        "alternate addresses",
        "Roku",
        "News   /",
        "News / Turkey",
        text.splitlines()[0],
        HEADLINE,
    ):
        assert chrome not in body


def test_sample_captions_without_credit_are_caption_paragraphs():
    found = captions(to_article(sample_text()).body)
    assert len(found) == 3
    assert found[1].startswith("A handout photo released by")
    assert found[2].startswith("Palestinian protesters clash")


def test_captions_are_not_the_summary():
    """The teaser is the first paragraph of text, not the photo caption above it."""
    assert prepare(to_article(sample_text())).summary.startswith("Turkish President")
    assert prepare(to_article(SYNTHETIC, "2024-06-03T10:00:00Z")).summary.startswith("First")


def test_id_is_stable_and_depends_on_content_only():
    text = sample_text()
    first = parse_page(text, published="2017-12-11T20:00:00")["id"]
    assert parse_page(text, published="2017-12-11T20:00:00")["id"] == first
    assert parse_page(text, published="2017-12-12T08:00:00Z")["id"] == first
    assert parse_page(SYNTHETIC, published="2024-06-03T10:00:00Z")["id"] != first


def test_missing_published_is_a_field_error():
    with pytest.raises(DocumentError) as caught:
        parse_page(sample_text(), published=None, source="000.txt")
    (error,) = caught.value.errors
    assert error.field == "published"
    assert "--published" in error.reason and "no date" in error.reason


def test_no_breadcrumb_or_headline_is_a_field_error():
    with pytest.raises(DocumentError) as caught:
        parse_page("A headline\n\nA paragraph.\n", published="2024-01-01T00:00:00Z")
    assert [e.field for e in caught.value.errors] == ["section"]
    with pytest.raises(DocumentError) as caught:
        parse_page("News / Turkey\n\n", published="2024-01-01T00:00:00Z")
    assert [e.field for e in caught.value.errors] == ["title"]


def test_sniffing():
    assert looks_like_page_text(sample_text())
    assert looks_like_page_text(SYNTHETIC)
    assert not looks_like_page_text('{"id": "a", "title": "x"}\n')
    assert not looks_like_page_text('\ufeff\n  {"id": "a"}\n')
    assert not looks_like_page_text("  \n")


def test_synthetic_page_with_crlf_and_bom():
    crlf = SYNTHETIC.replace("\n", "\r\n")
    doc = parse_page(crlf, published="2024-06-03T10:00:00Z")
    assert doc["id"] == parse_page(SYNTHETIC.lstrip("\ufeff"), published="x")["id"]
    article = parse_article(doc, origin=ORIGIN, timezone=TEHRAN)
    assert article.section == ("World", "Middle East")
    assert article.title == "Gaza truce holds for a second day"
    assert article.url == f"{ORIGIN}/world/middle-east/gaza-truce-holds-for-a-second-day"
    assert prepare(article).summary == (
        "First paragraph, with <b>markup</b> & an ampersand. It is wrapped over two lines."
    )
    parts = fragments(article.body)
    assert [p.tag for p in parts] == ["p", "p", "p"]
    assert parts[0].get("class") == "caption"
    assert parts[0].text == "A photo taken on June 2 shows the crossing. (Photo by Reuters)"
    assert "&lt;b&gt;markup&lt;/b&gt; &amp; an ampersand" in article.body
    assert parts[-1].text == "Last paragraph."
    for chrome in ("Read More", "alternate addresses", "www.example.org", "Roku", "\r", "\ufeff"):
        assert chrome not in article.body


def test_long_first_paragraph_summary_is_cut_at_a_word():
    words = " ".join(f"word{i}" for i in range(100))
    doc = parse_page(
        f"News / Iran\n\nHeadline\n\n{words}\n\nPress TV News Roku",
        published="2024-01-01T00:00:00Z",
    )
    summary = prepare(parse_article(doc, origin=ORIGIN, timezone=TEHRAN)).summary
    assert summary.endswith("…")
    assert len(summary) <= 300
    assert words.startswith(summary[:-1] + " ")
    assert "Roku" not in doc["body"]


def test_a_page_url_is_a_uri_so_importing_it_notes_nothing():
    """Slugs keep non-ASCII letters; the page's URL is written percent-encoded, so the import
    logs no normalisation of a URL the publisher never wrote."""
    page = "اخبار / ایران\n\nپوتین و اردوغان دیدار کردند\n\nیک بند.\n"
    notes: list[Normalised] = []
    article = parse_article(parse_page(page, published="2024-01-01T00:00:00Z"), origin=ORIGIN,
                            timezone=TEHRAN, notes=notes)
    assert article.url.isascii() and notes == []
    assert urllib.parse.unquote(article.url).endswith("/پوتین-و-اردوغان-دیدار-کردند")
