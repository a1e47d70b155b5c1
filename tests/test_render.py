"""Rendering checked by real parsers: feedparser (no bozo), lxml, the Atom RELAX NG schema."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree

from feedcheck import MIRROR_FOOTER, valid_xml
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, MemoryCache
from feedsvc.ingest.document import parse_article
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.formats import FORMATS
from feedsvc.render.items import item_id, prepare
from reader_view import reader_text

ATOM = "{http://www.w3.org/2005/Atom}"
SAMPLE_TITLE = "Putin, Erdogan warn over escalating al-Quds tensions"


def _all_documents(renderer) -> dict[FeedKey, bytes]:
    documents = {}
    for spec in renderer.catalog().values():
        documents.update({k: e.body for k, e in renderer.build(spec).items()})
    return documents




def _urls(root: etree._Element) -> list[str]:
    """Every URL in a feed document (link/href/src attributes, <link> texts, body HTML) except
    the mirror footer's, which links the other addresses on purpose."""
    urls = list(root.xpath("//@href | //@url | //@src"))
    urls += [e.text for e in root.iter("link") if e.text]
    for html in root.xpath("//*[local-name()='encoded' or local-name()='content']/text()"):
        urls += re.findall(r'(?:href|src)="([^"]+)"', MIRROR_FOOTER.sub("", html))
    return urls


@pytest.mark.long
def test_every_feed_on_every_address_parses_and_validates(demo_renderer, settings):
    documents = _all_documents(demo_renderer)
    catalog = demo_renderer.catalog()
    assert set(catalog) == {"", "news", "news/turkey", "news/middle-east", "news/iran", "world"}
    assert len(documents) == len(catalog) * len(FORMATS) * len(settings.addresses)
    for key, body in documents.items():
        if not key.filename.endswith(".xml"):
            continue  # JSON Feed and Roku: tests/test_jsonfeed_roku.py
        root = valid_xml(key.filename, body, key)
        assert 0 < len(feedparser.parse(body).entries) <= settings.items_per_feed, key
        host = urlsplit(key.origin).netloc
        canonical_host = urlsplit(settings.origin).netloc
        for url in _urls(root):
            parts = urlsplit(url)
            assert parts.scheme in ("http", "https", "mailto"), (key, url)
            if parts.scheme != "mailto":
                assert parts.netloc, (key, url)
            if key.origin != settings.origin:
                assert parts.netloc != canonical_host, (key, url)
        assert host.encode() in body


def test_section_feed_includes_subsections_newest_first(demo_renderer, store):
    """The `news` feed is the newest 50 of News and all its subsections, in that order."""
    expected = store.newest("news", 50)
    assert {a.section_path for a in expected} >= {"news/turkey", "news/iran", "news/middle-east"}
    assert "world" not in {a.section_path for a in expected}
    body = demo_renderer.build(demo_renderer.catalog()["news"])[
        FeedKey("news", "rss.xml", "https://news.example")].body
    entries = feedparser.parse(body).entries
    assert [e.id for e in entries] == [item_id(a.id) for a in expected]
    dates = [e.published_parsed for e in entries]
    assert dates == sorted(dates, reverse=True)


def test_sample_page_in_turkey_feed(demo_renderer):
    entries = {
        key: feedparser.parse(entry.body).entries
        for key, entry in demo_renderer.build(demo_renderer.catalog()["news/turkey"]).items()
        if key.filename.endswith(".xml")
    }
    for key, items in entries.items():
        titles = [e.title for e in items]
        assert SAMPLE_TITLE in titles, key
        sample = items[titles.index(SAMPLE_TITLE)]
        content = sample.content[0].value
        # the page has no image URL: captions are paragraphs in the page's words, no figure
        assert "<figure" not in content and "Read More" not in content
        assert 'May 3, 2017. (Photo by AFP)</p>' in content
        assert '<p class="caption">A handout photo released by' in content


def test_ids_are_the_same_on_every_address_and_links_follow_the_address(demo_renderer, settings):
    rendered = demo_renderer.build(demo_renderer.catalog()["world"])
    ids = {}
    for key, entry in rendered.items():
        if not key.filename.endswith(".xml"):
            continue
        parsed = feedparser.parse(entry.body)
        ids.setdefault(key.filename, set()).add(tuple(e.id for e in parsed.entries))
        host = urlsplit(key.origin).netloc
        assert all(urlsplit(e.link).netloc in (host, "www.un.org") or "news.example" not in
                   e.link for e in parsed.entries)
        self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
        assert self_links == [f"{key.origin}/feeds/world/{key.filename}"]
    assert all(len(variants) == 1 for variants in ids.values())


def test_mirror_footer_links_the_article_on_the_other_addresses(demo_renderer, settings):
    rendered = demo_renderer.build(demo_renderer.catalog()["news/iran"])
    for key, entry in rendered.items():
        if key.filename != "rss.xml":
            continue
        item = feedparser.parse(entry.body).entries[0]
        footer = MIRROR_FOOTER.findall(item.content[0].value)
        assert len(footer) == 1
        others = [a for a in settings.addresses if a != key.origin]
        path = urlsplit(item.link).path
        linked = re.findall(r'href="([^"]+)"', footer[0])
        assert linked == [f"{origin}{path}" for origin in others]


def test_rendering_twice_gives_identical_bytes(demo_renderer):
    first = _all_documents(demo_renderer)
    second = _all_documents(demo_renderer)
    assert first == second


def test_feed_dates_come_from_the_data_not_now(demo_renderer, store):
    body = demo_renderer.build(demo_renderer.catalog()[""])[
        FeedKey("", "atom.xml", "https://news.example")].body
    root = etree.fromstring(body)
    feed_updated = datetime.fromisoformat(root.findtext(f"{ATOM}updated"))
    newest = max(datetime.fromisoformat(e.text) for e in root.iter(f"{ATOM}updated")
                 if e.getparent() is not root)
    assert feed_updated == newest
    assert feed_updated < datetime.now(UTC).replace(year=datetime.now(UTC).year)


def test_hostile_article_cannot_break_or_poison_a_feed(settings, store, renderer):
    hostile = parse_article({
        "id": "hostile-1",
        "url": "/news/iran/hostile",
        "section": "News/Iran",
        "title": "Bad \x00\x0b bytes <b>and</b> ]]> markup \ufffe",
        "published": "2026-11-01T10:00:00Z",
        "summary": "summary with \x1f control",
        "body": (
            '<p onclick="steal()">Hi <script>alert(1)</script><a href="javascript:alert(2)">x</a>'
            '<iframe src="https://evil.example/"></iframe><style>p{}</style>'
            '<a href="relative/page">rel</a> ]]> <img src="/i.jpg" onerror="x()"></p>\x08'
        ),
        "tags": ["<tag>", "ok"],
        "authors": ["A & B"],
    }, origin=settings.origin, timezone=settings.timezone)
    store.upsert([hostile])
    for key, entry in renderer.build(renderer.catalog()["news/iran"]).items():
        if not key.filename.endswith(".xml"):
            continue
        parsed = feedparser.parse(entry.body)
        assert not parsed.bozo, (key, parsed.get("bozo_exception"))
        etree.fromstring(entry.body)
        item = parsed.entries[0]
        assert reader_text(item.title_detail) == "Bad  bytes <b>and</b> ]]> markup"
        html = item.content[0].value
        for forbidden in ("<script", "onclick", "javascript:", "<iframe", "<style", "onerror",
                          "evil.example"):
            assert forbidden not in html, (key, forbidden)
        origin = key.origin
        assert f'href="{origin}/news/iran/relative/page"' in html
        assert f'src="{origin}/i.jpg"' in html


MEDIA = "{http://search.yahoo.com/mrss/}"


def _article_with_media(settings):
    return parse_article({
        "id": "media-1", "url": "/world/media-1", "section": "World", "title": "With media",
        "published": "2026-11-02T10:00:00Z", "body": "<p>Body.</p>",
        "images": [{"url": "/images/lead.jpg", "caption": "The lead photo.", "credit": "AFP",
                    "width": 1200, "height": 800},
                   {"url": "https://cdn.example.org/second.png"}],
        "videos": [{"url": "https://video.example.org/clip.m3u8", "duration": 95,
                    "thumbnail": "/images/clip.jpg", "quality": "HD"}],
        "related": [{"title": "Earlier story", "url": "/world/earlier"}],
    }, origin=settings.origin, timezone=settings.timezone)


def test_media_rss_lead_photo_and_video(settings, store, renderer):
    store.upsert([_article_with_media(settings)])
    origin = "https://example-news.tv"
    body = renderer.build(renderer.catalog()["world"])[FeedKey("world", "rss.xml", origin)].body
    item = etree.fromstring(body).find("channel/item")
    image, video = item.findall(f"{MEDIA}content")
    assert image.attrib == {"url": f"{origin}/images/lead.jpg", "medium": "image",
                            "type": "image/jpeg", "width": "1200", "height": "800"}
    assert image.findtext(f"{MEDIA}description") == "The lead photo."
    assert image.findtext(f"{MEDIA}credit") == "AFP"
    assert item.find(f"{MEDIA}thumbnail").get("url") == f"{origin}/images/lead.jpg"
    assert video.attrib == {"url": "https://video.example.org/clip.m3u8", "medium": "video",
                            "type": "application/vnd.apple.mpegurl", "duration": "95"}
    assert video.find(f"{MEDIA}thumbnail").get("url") == f"{origin}/images/clip.jpg"
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    assert parsed.entries[0].media_credit[0]["content"] == "AFP"


def test_atom_related_and_enclosure_links(settings, store, renderer):
    store.upsert([_article_with_media(settings)])
    body = renderer.build(renderer.catalog()["world"])[
        FeedKey("world", "atom.xml", settings.origin)].body
    root = valid_xml("atom.xml", body)
    links = [(link.get("rel"), link.get("href"), link.get("type"))
             for link in root.find(f"{ATOM}entry").findall(f"{ATOM}link")]
    assert links == [
        (None, "https://news.example/world/media-1", None),  # alternate is the default rel
        ("related", "https://news.example/world/earlier", None),
        ("enclosure", "https://news.example/images/lead.jpg", "image/jpeg"),
        ("enclosure", "https://cdn.example.org/second.png", "image/png"),
        ("enclosure", "https://video.example.org/clip.m3u8", "application/vnd.apple.mpegurl"),
    ]
    entry = feedparser.parse(body).entries[0]
    assert entry.enclosures[0].href == "https://news.example/images/lead.jpg"


def test_hub_links_when_hubs_are_configured(settings, store):
    hubs = ("https://hub.example/", "https://h2.example/")
    hubbed = dataclasses.replace(settings, websub_hubs=hubs)
    renderer = FeedBuilder(hubbed, store, MemoryCache())
    store.upsert([_article_with_media(settings)])
    for key, entry in renderer.build(renderer.catalog()[""]).items():
        if not key.filename.endswith(".xml"):
            continue
        parsed = feedparser.parse(entry.body)
        assert not parsed.bozo
        hubs = [link.href for link in parsed.feed.links if link.rel == "hub"]
        assert hubs == ["https://hub.example/", "https://h2.example/"], key
        if key.filename == "rss.xml":
            assert parsed.feed.link == f"{key.origin}/"  # channel link: the site, not the feed


def test_atom_schematron_rules_hold(demo_renderer):
    """RFC 4287's Schematron rules, which RELAX NG validators skip: a feed has an author unless
    every entry has one; an entry has an alternate link or content."""
    for key, body in _all_documents(demo_renderer).items():
        if key.filename != "atom.xml":
            continue
        root = etree.fromstring(body)
        entries = root.findall(f"{ATOM}entry")
        assert root.find(f"{ATOM}author") is not None or all(
            e.find(f"{ATOM}author") is not None for e in entries), key
        for e in entries:
            alternate = [link for link in e.findall(f"{ATOM}link")
                         if link.get("rel") in (None, "alternate")]
            assert alternate or e.find(f"{ATOM}content") is not None, key


def test_one_unrenderable_item_is_left_out_not_the_whole_feed(settings, caplog):
    """An item no format can carry (a lone surrogate in its URL, as a document stored by an
    older version could hold) is logged and left out; the rest of the feed is served."""
    good = prepare(_article_with_media(settings))
    bad = dataclasses.replace(good, id="urn:uuid:bad", url="https://news.example/\ud800")
    documents = FeedDocuments(settings).render(FeedSpec("world", "World", "World"), [bad, good])
    for (_address, fmt), body in documents.items():
        assert good.id.removeprefix("urn:uuid:").replace("-", "").encode() in body.replace(
            b"-", b""), fmt.filename
        assert b"urn:uuid:bad" not in body
    assert "urn:uuid:bad" in caplog.text
