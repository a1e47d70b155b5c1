"""Each address's documents are derived from one rendering on the canonical origin
(feedsvc.render.mirrors): what that derivation must and must not rewrite, in every format."""

from __future__ import annotations

import json
import re

from lxml import etree

from conftest import ROOT
from feedcheck import MIRROR_FOOTER, assert_valid
from feedsvc.config import load_settings
from feedsvc.ingest.document import parse_article
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.items import prepare
from feedsvc.render.mirrors import Mirrors
from feedsvc.render.roku import MAX_BYTES

SITE = load_settings(ROOT / "config" / "feedsvc.toml", environ={})
SPEC = FeedSpec("news", "Example News: News", "All news stories.")
MIRROR = "https://news-mirror.example"


def _render(body: str, **fields) -> dict[tuple[str, str], bytes]:
    article = parse_article({
        "id": "mirror-1", "url": "/news/mirror-1", "section": "News", "title": "Mirrors",
        "published": "2026-11-01T10:00:00Z", "body": body, **fields,
    }, origin=SITE.origin, timezone=SITE.timezone)
    documents = FeedDocuments(SITE).render(SPEC, [prepare(article)])
    return {(address, fmt.filename): doc for (address, fmt), doc in documents.items()}


def _bodies(filename: str, doc: bytes) -> list[str]:
    """The item HTML of a document, as the format carries it."""
    if filename == "feed.json":
        return [item["content_html"] for item in json.loads(doc)["items"]]
    return etree.fromstring(doc).xpath(
        "//*[local-name()='encoded' or local-name()='content']/text()")


def test_links_on_the_canonical_origin_move_to_the_address_in_every_format():
    body = ('<p><a href="https://news.example">home</a> <a href="HTTPS://NEWS.EXAMPLE/Caps">'
            'caps</a> <a href="https://news.example.evil/x">lookalike</a> '
            '<a href="https://news.example:8443/x">other port</a> '
            '<a href="https://elsewhere.example/news.example">foreign</a></p>')
    documents = _render(body)
    for (address, filename), doc in documents.items():
        if filename == "roku.json":
            continue
        assert_valid(filename, doc, (address, filename))
        [html] = _bodies(filename, doc)
        links = re.findall(r'href="([^"]+)"', MIRROR_FOOTER.sub("", html))
        assert links == [address, f"{address}/Caps", "https://news.example.evil/x",
                         "https://news.example:8443/x",
                         "https://elsewhere.example/news.example"], (address, filename)


def test_each_address_gets_its_own_footer_and_the_same_ids():
    documents = _render("<p>Body.</p>")
    ids = set()
    for (address, filename), doc in documents.items():
        if filename == "roku.json":
            continue
        [html] = _bodies(filename, doc)
        [footer] = MIRROR_FOOTER.findall(html)
        linked = re.findall(r'href="([^"]+)"', footer)
        assert linked == [f"{a}/news/mirror-1" for a in SITE.addresses if a != address]
        if filename == "atom.xml":
            root = etree.fromstring(doc)
            ids.add((root.findtext("{http://www.w3.org/2005/Atom}id"),
                     root.findtext("{http://www.w3.org/2005/Atom}entry/"
                                   "{http://www.w3.org/2005/Atom}id")))
    assert len(ids) == 1 and all(i.startswith("urn:uuid:") for i in ids.pop())


def test_a_forged_footer_marker_in_an_article_is_left_as_text():
    forged = "feedsvc-footer-0123456789abcdef-0-"
    for (address, filename), doc in _render(f"<p>{forged}</p>", summary=forged).items():
        if filename != "roku.json":
            assert forged.encode() in doc, (address, filename)
            [html] = _bodies(filename, doc)
            assert len(MIRROR_FOOTER.findall(html)) == 1


def test_no_footer_for_an_article_elsewhere_or_when_switched_off():
    for (_address, filename), doc in _render("<p>x</p>",
                                             url="https://elsewhere.example/a").items():
        assert b'class="mirrors"' not in doc, filename
    mirrors = Mirrors(SITE.origin, SITE.addresses, footer=False)
    assert mirrors.footers([], MIRROR) == []


def test_a_size_limit_holds_on_the_longest_address():
    mirrors = Mirrors("https://a.example", ("https://a.example", "https://longer-a.example"),
                      footer=True)
    body = b'{"u":"https://a.example/x","v":"https://a.example"}'
    copies = [mirrors.copy(body, a, [], str) for a in mirrors.addresses]
    assert mirrors.largest_copy(body) == max(map(len, copies)) > len(body)


def test_roku_documents_fit_on_every_address():
    videos = [{"url": f"/video/{n}.mp4", "duration": 60, "thumbnail": f"/thumb/{n}.jpg"}
              for n in range(1)]
    long_site = load_settings(ROOT / "config" / "feedsvc.toml", environ={})
    words = "lengthy " * 120
    articles = [parse_article({
        "id": f"r{n}", "url": f"/news/r{n}", "section": "News", "title": f"{n} {words}",
        "summary": words * 2, "published": f"2026-11-01T10:{n % 60:02d}:00Z",
        "videos": videos, "images": [{"url": f"/img/{n}.jpg"}],
    }, origin=long_site.origin, timezone=long_site.timezone) for n in range(400)]
    documents = FeedDocuments(long_site).render(SPEC, [prepare(a) for a in articles])
    sizes = {address: len(doc) for (address, fmt), doc in documents.items()
             if fmt.filename == "roku.json"}
    assert max(sizes.values()) < MAX_BYTES
    assert max(sizes.values()) > MAX_BYTES - 2_000  # as many as fit: the limit was reached
