"""Odd but legitimate publisher data is normalised and kept, with one log line per
normalisation naming file, line and field: over-long titles are shortened at a word with the
full title kept in the content, URLs and IRIs with spaces or non-ASCII characters are
percent-encoded (RFC 3987 §3.1) in every URL field. Hostile sizes are still refused."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import lxml.html
import pytest
import requests

from feedcheck import valid_json, valid_xml
from feedsvc.cache import MemoryCache
from feedsvc.ingest.document import (
    MAX_TITLE,
    TITLE_LENGTH,
    DocumentError,
    Normalised,
    parse_article,
)
from feedsvc.ingest.importer import Importer
from feedsvc.render.items import prepare

ORIGIN = "https://news.example"
TEHRAN = ZoneInfo("Asia/Tehran")
LONG_TITLE = " ".join(f"word{i}" for i in range(400))  # 3,289 characters
BASE = {"id": "odd", "url": "/news/turkey/odd", "section": "News/Turkey",
        "title": "Putin, Erdogan meet", "published": "2017-12-11T10:00:00Z"}

# (as the CMS exports it, as a URI) for each kind of oddity
URLS = [
    ("https://cdn.example/photos/Putin Erdogan.jpg",
     "https://cdn.example/photos/Putin%20Erdogan.jpg"),
    ("https://cdn.example/фото/путин.jpg",
     "https://cdn.example/%D1%84%D0%BE%D1%82%D0%BE/%D0%BF%D1%83%D1%82%D0%B8%D0%BD.jpg"),
    ("https://cdn.example/عکس/پوتین.jpg?size=large&alt=پوتین و اردوغان#بالا",
     "https://cdn.example/%D8%B9%DA%A9%D8%B3/%D9%BE%D9%88%D8%AA%DB%8C%D9%86.jpg?size=large"
     "&alt=%D9%BE%D9%88%D8%AA%DB%8C%D9%86%20%D9%88%20%D8%A7%D8%B1%D8%AF%D9%88%D8%BA%D8%A7%D9%86"
     "#%D8%A8%D8%A7%D9%84%D8%A7"),
    ("https://Пример.РФ:8443/a b", "https://xn--e1afmkfd.xn--p1ai:8443/a%20b"),
    ('https://cdn.example/a"<b>{c}|d^e`f\\g', "https://cdn.example/a%22%3Cb%3E%7Bc%7D%7Cd%5Ee%60f%5Cg"),
    ("/news/turkey/Putin Erdogan", "https://news.example/news/turkey/Putin%20Erdogan"),
]
# where each URL field is in a document, and how to read it back from the article
FIELDS = {
    "url": (lambda u: {"url": u}, lambda a: a.url),
    "images[0].url": (lambda u: {"images": [{"url": u}]}, lambda a: a.images[0].url),
    "videos[0].url": (lambda u: {"videos": [{"url": u}]}, lambda a: a.videos[0].url),
    "videos[0].thumbnail": (lambda u: {"videos": [{"url": "/v.mp4", "thumbnail": u}]},
                            lambda a: a.videos[0].thumbnail),
    "related[0].url": (lambda u: {"related": [{"title": "More", "url": u}]},
                       lambda a: a.related[0].url),
}


def parse(doc: dict, notes: list[Normalised] | None = None):
    return parse_article(doc, origin=ORIGIN, timezone=TEHRAN, notes=notes)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("given, expected", URLS)
def test_every_url_field_is_percent_encoded_with_a_note(field, given, expected):
    put, read = FIELDS[field]
    notes: list[Normalised] = []
    article = parse({**BASE, **put(given)}, notes)
    assert read(article) == expected
    assert [note.field for note in notes] == [field]
    assert expected in notes[0].change


@pytest.mark.parametrize("url", ["https://cdn.example/a%20b/%D1%84", "https://cdn.example/a?b=1"])
def test_uris_are_kept_as_they_are_without_a_note(url):
    notes: list[Normalised] = []
    assert parse({**BASE, "url": url}, notes).url == url
    assert notes == []


@pytest.mark.parametrize("url", ["https://news .example/a", "https://" + "а" * 64 + ".example/",
                                 "https://exa mple.рф/"])
def test_a_host_that_cannot_be_a_host_name_is_still_refused(url):
    with pytest.raises(DocumentError) as caught:
        parse({**BASE, "url": url})
    assert [e.field for e in caught.value.errors] == ["url"]


def test_an_over_long_title_is_shortened_at_a_word_and_kept_whole_in_the_content():
    notes: list[Normalised] = []
    article = parse({**BASE, "title": LONG_TITLE, "body": "<p>Body.</p>"}, notes)
    assert len(article.title) <= TITLE_LENGTH and article.title.endswith("…")
    assert LONG_TITLE.startswith(article.title[:-1] + " ")
    first, second = lxml.html.fragments_fromstring(article.body)
    assert (first.get("class"), first.text_content()) == ("full-title", LONG_TITLE)
    assert second.text_content() == "Body."
    assert [(n.field, str(TITLE_LENGTH) in n.change) for n in notes] == [("title", True)]
    # the teaser then is the title's beginning, and a related link's title is shortened too
    assert prepare(parse({**BASE, "title": LONG_TITLE})).summary.startswith("word0 word1")
    [link] = parse({**BASE, "related": [{"title": LONG_TITLE, "url": "/b"}]}).related
    assert len(link.title) <= TITLE_LENGTH and link.title.endswith("…")


def test_a_title_without_spaces_is_cut_where_it_must_be():
    title = "普京与埃尔多安会晤" * 100
    article = parse({**BASE, "title": title})
    assert article.title == title[:TITLE_LENGTH - 1] + "…"


def test_a_hostile_title_length_is_still_refused():
    with pytest.raises(DocumentError) as caught:
        parse({**BASE, "title": "x " * (MAX_TITLE // 2 + 1)})
    [error] = caught.value.errors
    assert error.field == "title" and f"the limit is {MAX_TITLE}" in error.reason


def test_odd_articles_are_imported_logged_and_served_in_every_format(
        tmp_path: Path, settings, store, caplog, live_server_factory):
    """The issue's articles: a 2,000-character title, image URLs with spaces and Cyrillic or
    Persian path segments. Each is imported with one log line per normalisation and served,
    valid, in every format on the canonical address and a mirror."""
    title = ("Erdogan " * 250).strip()[:2000]
    docs = [
        {**BASE, "id": "long-title", "title": title, "body": "<p>The body.</p>"},
        {**BASE, "id": "odd-images", "url": "/news/turkey/Putin Erdogan",
         "images": [{"url": "https://cdn.example/photos/Putin Erdogan.jpg"},
                    {"url": "https://cdn.example/фото/путин.jpg"}],
         "videos": [{"url": "https://cdn.example/ویدیو/پوتین.mp4", "type": "mp4", "duration": 60,
                     "thumbnail": "https://cdn.example/ویدیو/پوتین 1.jpg"}]},
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs),
                    encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="feedsvc.ingest"):
        report = Importer(settings, store, progress=False).import_paths([path])
    assert (report.accepted, report.rejected) == (2, 0)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("feedsvc.ingest")]
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{path}:1", "title"], [f"{path}:2", "url"], [f"{path}:2", "images[0].url"],
        [f"{path}:2", "images[1].url"], [f"{path}:2", "videos[0].url"],
        [f"{path}:2", "videos[0].thumbnail"]]

    server = live_server_factory(settings, store, MemoryCache())
    for host in ("news.example", "news-mirror.example"):
        bodies = {}
        for filename in ("rss.xml", "atom.xml", "feed.json", "roku.json"):
            response = requests.get(f"{server.url}/feeds/news/turkey/{filename}",
                                    headers={"Host": host}, timeout=10)
            assert response.status_code == 200
            bodies[filename] = response.content
        for filename in ("rss.xml", "atom.xml"):
            valid_xml(filename, bodies[filename], host)
            entries = {e.id: e for e in feedparser.parse(bodies[filename]).entries}
            assert len(entries) == 2
            shortened = next(e for e in entries.values() if e.title.endswith("…"))
            assert title in shortened.content[0].value
            odd = next(e for e in entries.values() if e.link.endswith("/Putin%20Erdogan"))
            assert " " not in odd.link
        feed = valid_json("feed.json", bodies["feed.json"], host)  # "uri" format checked
        assert {i["image"] for i in feed["items"] if "image" in i} == {
            "https://cdn.example/photos/Putin%20Erdogan.jpg"}
        roku = valid_json("roku.json", bodies["roku.json"], host)
        [video] = [v for kind in ("shortFormVideos", "movies") for v in roku.get(kind, [])]
        assert video["thumbnail"] == ("https://cdn.example/%D9%88%DB%8C%D8%AF%DB%8C%D9%88/"
                                      "%D9%BE%D9%88%D8%AA%DB%8C%D9%86%201.jpg")
