"""Excerpt mode (`feeds.content`, per section `content`): over real HTTP, Redis and a real store,
an excerpted article's body appears in no document on any address, its excerpt ends with a link
to the article on the reader's address, its media stay; a section set to `full` keeps bodies."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests
from lxml import etree

from feedcheck import assert_valid
from feedsvc.config import ConfigError, settings_from_mapping
from feedsvc.ingest.document import parse_article
from feedsvc.model import shorten
from feedsvc.render.text import excerpt_html
from feedsvc.store import Store

LATE = "The zebra crossed the Bosphorus bridge at midnight without a ticket."
PARAGRAPHS = [f"Paragraph {n} opens here. It says a little more about the story." for n in
              range(1, 8)]
BODY = "".join(f"<p>{p}</p>" for p in PARAGRAPHS) + f"<p>{LATE}</p>"
ADDRESSES = {"news.example": "https://news.example",
             "news-mirror.example": "https://news-mirror.example"}
MEDIA = {"images": [{"url": "https://img.example/lead.jpg", "caption": "Lead"}],
         "videos": [{"url": "https://video.example/clip.mp4", "duration": 30,
                     "thumbnail": "https://img.example/thumb.jpg"}]}


def _article(settings, article_id: str, section: str, **fields):
    return parse_article({"id": article_id, "url": f"/{article_id}", "section": section,
                          "title": f"Story {article_id}", "published": "2026-11-20T10:00:00Z",
                          "body": BODY, **MEDIA} | fields,
                         origin=settings.origin, timezone=settings.timezone)


@pytest.fixture
def excerpt_server(settings, database_url, redis_cache, live_server_factory):
    sections = tuple(dataclasses.replace(s, content="full") if s.path == "world" else s
                     for s in settings.sections)
    settings = dataclasses.replace(settings, database_url=database_url, content="excerpt",
                                   excerpt_length=300, sections=sections)
    store = Store(settings.database_url)
    store.upsert([_article(settings, "turkey-1", "News/Turkey"),
                  _article(settings, "turkey-2", "News/Turkey", summary="Told in one line."),
                  _article(settings, "world-1", "World", body=BODY.replace("zebra", "giraffe"))])
    yield live_server_factory(settings, store, redis_cache)
    store.close()


def _get(server, path: str, host: str) -> bytes:
    response = requests.get(server.url + path, headers={"Host": host}, timeout=30)
    assert response.status_code == 200, (path, host, response.status_code)
    return response.content


def _item_html(filename: str, doc: bytes) -> dict[str, str]:
    """Each item's body as the format carries it, by item link."""
    if filename == "feed.json":
        return {i["url"]: i["content_html"] for i in json.loads(doc)["items"]}
    root = etree.fromstring(doc)
    if filename == "atom.xml":
        ns = {"a": "http://www.w3.org/2005/Atom"}
        return {e.xpath("a:link[not(@rel) or @rel='alternate']/@href", namespaces=ns)[0]:
                e.findtext("a:content", namespaces=ns) for e in root.iterfind("a:entry", ns)}
    return {i.findtext("link"): i.findtext(
        "{http://purl.org/rss/1.0/modules/content/}encoded") for i in root.iter("item")}


def test_excerpted_bodies_appear_nowhere_and_link_to_the_article_on_the_readers_address(
        excerpt_server):
    for host, origin in ADDRESSES.items():
        for path in ("", "news/", "news/turkey/"):
            for filename in ("rss.xml", "atom.xml", "feed.json", "roku.json"):
                doc = _get(excerpt_server, f"/feeds/{path}{filename}", host)
                assert_valid(filename, doc, (host, path, filename))
                assert b"zebra" not in doc, (host, path, filename)
                if filename == "roku.json":
                    assert b"clip.mp4" in doc
                    continue
                bodies = _item_html(filename, doc)
                cut = bodies[f"{origin}/turkey-1"]
                link = f'<p class="continue"><a href="{origin}/turkey-1">Continue reading</a></p>'
                assert link in cut, (host, path, filename, cut)
                assert "Paragraph 1 opens here." in cut and "Paragraph 7" not in cut
                told = bodies[f"{origin}/turkey-2"]
                assert told.startswith("<p>Told in one line.</p><p class=\"continue\">"), told
                assert b"lead.jpg" in doc and b"clip.mp4" in doc, (host, path, filename)


def test_a_section_set_to_full_keeps_its_bodies(excerpt_server):
    for host in ADDRESSES:
        for path in ("", "world/"):
            doc = _get(excerpt_server, f"/feeds/{path}atom.xml", host)
            assert_valid("atom.xml", doc, (host, path))
            assert b"giraffe" in doc and b"zebra" not in doc, (host, path)


def test_an_excerpt_is_whole_paragraphs_then_one_cut_at_a_sentence():
    excerpt = excerpt_html(BODY, None, "https://news.example/a", 140)
    assert excerpt == ("<p>" + PARAGRAPHS[0] + "</p><p>" + PARAGRAPHS[1] + "</p>"
                       '<p class="continue"><a href="https://news.example/a">Continue reading'
                       "</a></p>")
    partial = excerpt_html(BODY, None, "https://news.example/a", 160)
    assert f"<p>{PARAGRAPHS[1]}</p><p>Paragraph 3 opens here.</p>" in partial
    one_long = "<p>" + " ".join(["One sentence here."] * 30) + "</p>"
    assert shorten("One sentence here. " * 3, 40, sentences=True) == (
        "One sentence here. One sentence here.")
    assert excerpt_html(one_long, None, "https://x.example/", 40).startswith(
        "<p>One sentence here. One sentence here.</p>")


@pytest.mark.parametrize(("table", "message"), [
    ({"feeds": {"content": "teaser"}}, "feeds.content: must be 'full' or 'excerpt'"),
    ({"feeds": {"excerpt_length": 10}}, "feeds.excerpt_length: must be between 50"),
    ({"sections": [{"name": "News", "content": "some"}]}, "sections[0].content: must be"),
])
def test_bad_content_settings_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        settings_from_mapping(table)


def test_a_section_inherits_content_from_its_nearest_configured_ancestor():
    settings = settings_from_mapping({"feeds": {"content": "full"}, "sections": [
        {"name": "News", "content": "excerpt"}, {"name": "News/Turkey", "content": "full"}]})
    assert [settings.content_of(p) for p in ("", "news", "news/iran", "news/turkey",
                                             "news/turkey/ankara", "world")] == [
        "full", "excerpt", "excerpt", "full", "full", "full"]
