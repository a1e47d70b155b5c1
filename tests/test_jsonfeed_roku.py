"""JSON Feed 1.1 and Roku Direct Publisher documents checked against their JSON Schemas (with
format checking), on every feed and every address of the demo data, plus synthetic edge cases."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from conftest import ROOT
from feedcheck import MIRROR_FOOTER, valid_json
from feedsvc.config import load_settings
from feedsvc.model import Image, Video
from feedsvc.render.catalog import FeedSpec
from feedsvc.render.context import FeedContext
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.items import Item, Person, item_id, prepare
from feedsvc.render.jsonfeed import render_json_feed
from feedsvc.render.mirrors import Mirrors
from feedsvc.render.roku import MAX_BYTES, render_roku

SITE = load_settings(ROOT / "config" / "feedsvc.toml", environ={})
SPEC = FeedSpec("news/turkey", "Example News: Turkey", "News from Turkey")
BASE = datetime(2026, 11, 1, 12, tzinfo=UTC)
RENDERERS = {"feed.json": render_json_feed, "roku.json": render_roku}


def _documents(renderer) -> Iterator[tuple[FeedSpec, str, list[Item], dict[str, bytes]]]:
    """Every feed on every address as feedsvc.build makes it: the feed, the address,
    its (canonical) items and its documents by file name."""
    s = renderer.settings
    documents = FeedDocuments(s)
    for spec in renderer.catalog().values():
        items = [prepare(a) for a in renderer.store.newest(spec.path, s.items_per_feed)]
        rendered = documents.render(spec, items)
        for address in s.addresses:
            yield spec, address, items, {f.filename: body for (a, f), body in rendered.items()
                                         if a == address}


def _render_all(renderer) -> dict[tuple[str, str, str], bytes]:
    return {
        (spec.path, filename, address): body
        for spec, address, _items, documents in _documents(renderer)
        for filename, body in documents.items()
        if filename in RENDERERS
    }


def _urls(filename: str, doc: dict) -> list[str]:
    """Every URL of a document but the mirror footer's, which links other addresses on purpose."""
    if filename == "roku.json":
        return [u for v in doc["shortFormVideos"]
                for u in (v["thumbnail"], *(x["url"] for x in v["content"]["videos"]))]
    urls = [doc["home_page_url"], doc["feed_url"]]
    for item in doc["items"]:
        urls += [item["url"], *([item["image"]] if "image" in item else [])]
        urls += [a["url"] for a in item.get("attachments", [])]
        urls += re.findall(r'(?:href|src)="([^"]+)"', MIRROR_FOOTER.sub("", item["content_html"]))
    return urls


def _ids(filename: str, doc: dict) -> tuple[str, ...]:
    entries = doc["items"] if filename == "feed.json" else doc["shortFormVideos"]
    return tuple(e["id"] for e in entries)


def test_every_feed_on_every_address_validates(demo_renderer, settings):
    documents = _render_all(demo_renderer)
    hosts = {urlsplit(a).netloc for a in settings.addresses}
    ids: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for (path, filename, origin), body in documents.items():
        key = (path, filename, origin)
        doc = valid_json(filename, body, key)
        ids.setdefault((path, filename), set()).add(_ids(filename, doc))
        host = urlsplit(origin).netloc
        for url in _urls(filename, doc):
            parts = urlsplit(url)
            assert parts.scheme in ("http", "https", "mailto"), (key, url)
            if parts.scheme != "mailto":
                assert parts.netloc == host or parts.netloc not in hosts, (key, url)
        if filename == "feed.json":
            assert doc["version"] == "https://jsonfeed.org/version/1.1"
            feeds = f"{origin}/feeds/{path}/" if path else f"{origin}/feeds/"
            assert doc["feed_url"] == f"{feeds}feed.json", key
            assert doc["home_page_url"] == (f"{origin}/{path}" if path else f"{origin}/"), key
            assert 0 < len(doc["items"]) <= settings.items_per_feed, key
            assert "hubs" not in doc  # none configured in the demo
        else:
            assert doc["providerName"] == settings.site_title
            assert all(len(v["shortDescription"]) <= 200 for v in doc["shortFormVideos"]), key
            assert all(v["genres"] for v in doc["shortFormVideos"]), key
            listed = {i for p in doc["playlists"] for i in p["itemIds"]}
            assert listed == set(_ids(filename, doc)), key
    assert all(len(variants) == 1 for variants in ids.values()), "ids differ between addresses"
    assert all(ids[(path, "roku.json")] != {()} for path in ("", "news", "world"))


def test_rendering_twice_gives_identical_bytes(demo_renderer):
    assert _render_all(demo_renderer) == _render_all(demo_renderer)


def _roku_id(item: Item) -> str:
    return uuid.UUID(item.id.removeprefix("urn:uuid:")).hex


MIME = {"mp4": "video/mp4", "hls": "application/vnd.apple.mpegurl",
        "dash": "application/dash+xml"}


def test_video_articles_on_roku_and_in_json_feed(demo_renderer, settings):
    """Every demo video article (the demo data is generated, so no ids are hard-coded here)."""
    seen_types, thumbnail_hosts = set(), set()
    mirrors = Mirrors.of(settings)
    for spec, address, canonical_items, documents in _documents(demo_renderer):
        roku = valid_json("roku.json", documents["roku.json"], address)
        feed = valid_json("feed.json", documents["feed.json"], address)
        videos = {v["id"]: v for v in roku["shortFormVideos"]}
        items = {i["id"]: i for i in feed["items"]}
        with_video = [i for i in canonical_items if i.videos]
        assert set(videos) == {_roku_id(i) for i in with_video}, (spec.path, address)
        for item in with_video:
            video, entry = item.videos[0], videos[_roku_id(item)]
            assert entry["thumbnail"] == mirrors.url(video.thumbnail or item.images[0].url,
                                                     address)
            thumbnail_hosts.add(urlsplit(entry["thumbnail"]).netloc)
            assert entry["content"]["duration"] == video.duration
            assert entry["content"]["videos"] == [{
                "url": mirrors.url(video.url, address), "quality": video.quality or "HD",
                "videoType": video.type.upper(),
            }]
            assert entry["genres"] == ["news"]
            assert entry["releaseDate"] == item.published.date().isoformat()
            assert entry["tags"] and all(len(t) <= 20 for t in entry["tags"])
            assert set(entry["tags"]) <= {*item.tags, *item.section}
            assert item.section[-1] in entry["tags"]
            assert 0 < len(entry["shortDescription"]) <= 200
            assert items[item.id]["attachments"] == [{
                "url": mirrors.url(video.url, address), "mime_type": MIME[video.type],
                "duration_in_seconds": video.duration,
            }]
            seen_types.add(video.type)
        sections = {i.section[-1] for i in with_video}
        assert {c["name"] for c in roku["categories"]} == sections
        assert [c["playlistName"] for c in roku["categories"]] == [
            p["name"] for p in roku["playlists"]]
    assert {"mp4", "hls"} <= seen_types
    assert {urlsplit(a).netloc for a in settings.addresses} <= thumbnail_hosts


def _item(n: int, **changes) -> Item:
    published = BASE + timedelta(minutes=n)
    item = Item(
        id=item_id(f"synthetic-{n}"), url=f"https://news.example/news/turkey/{n}",
        section=("News", "Turkey"), title=f"Headline {n}", summary=f"Summary {n}.",
        content_html=f'<p>Body <a href="https://news.example/x/{n}">{n}</a></p>',
        published=published, updated=published, authors=(Person("Reporter"),), tags=("Turkey",),
        language=None, images=(Image(f"https://news.example/images/{n}.jpg"),),
        videos=(Video(f"https://video.news.example/{n}.mp4", duration=60,
                      thumbnail=f"https://news.example/images/{n}-thumb.jpg"),),
        related=(),
    )
    return dataclasses.replace(item, **changes)


def test_roku_document_stays_under_500_kb():
    words = "lengthy " * 120
    items = [_item(n, title=f"{n} {words}", summary=words * 2) for n in range(400)]
    items.reverse()  # newest first, as the store returns them
    body = render_roku(FeedContext(SPEC, items, SITE.origin, SITE))
    doc = valid_json("roku.json", body)
    kept = len(doc["shortFormVideos"])
    assert len(body) < MAX_BYTES and 0 < kept < len(items)
    newest = [uuid.UUID(i.id.removeprefix("urn:uuid:")).hex for i in items]
    assert _ids("roku.json", doc) == tuple(newest[:kept])  # the oldest were dropped
    one_more = FeedContext(SPEC, items[: kept + 1], SITE.origin, SITE)
    assert len(json.loads(render_roku(one_more))["shortFormVideos"]) == kept  # as many as fit
    assert doc["lastUpdated"] == "2026-11-01T18:39:00Z"  # the data's, not the time of rendering


def test_roku_leaves_out_what_it_cannot_play_and_trims_text(caplog):
    long_summary = "word " * 80
    items = [
        _item(1, videos=(Video("https://v.example/a.mp4"),)),  # no duration
        _item(2, videos=(Video("https://v.example/a.mp4", duration=0),)),
        _item(3, videos=(Video("https://v.example/a.mp4", duration=5),), images=()),
        _item(4, videos=(Video("https://v.example/stream", duration=5, thumbnail=None),)),
        _item(5, videos=()),
        _item(6, title="  "),
        _item(7, summary="", tags=("Turkey", "turkey", " Spaced  tag ",
                                    "A tag far longer than twenty")),
        _item(8, summary=long_summary, videos=(Video("https://v.example/b.mpd", duration=9),),
              section=("News", "Middle East", "Gulf States Economy")),
    ]
    with caplog.at_level(logging.INFO, logger="feedsvc.render.roku"):
        doc = valid_json("roku.json", render_roku(FeedContext(SPEC, items, SITE.origin,
                                                                      SITE)))
    assert len([r for r in caplog.records if "left out" in r.getMessage()]) == 5
    dash, short = doc["shortFormVideos"]  # newest first
    assert (dash["title"], short["title"]) == ("Headline 8", "Headline 7")
    assert short["shortDescription"] == "Headline 7" and "longDescription" not in short
    assert short["tags"] == ["Turkey", "Spaced tag", "News"]
    assert dash["content"]["videos"][0] == {
        "url": "https://v.example/b.mpd", "quality": "HD", "videoType": "DASH"}
    assert dash["thumbnail"] == "https://news.example/images/8.jpg"  # the lead photo
    assert len(dash["shortDescription"]) <= 200 < len(dash["longDescription"]) <= 500
    assert sorted(c["name"] for c in doc["categories"]) == ["Gulf States Economy", "Turkey"]
    names = [p["name"] for p in doc["playlists"]]
    assert len(set(names)) == 2 and all(len(n) <= 20 for n in names)
    assert {c["playlistName"] for c in doc["categories"]} == set(names)


def test_feeds_without_items_or_videos_are_still_valid():
    empty = FeedContext(SPEC, [], SITE.origin, SITE)
    roku = valid_json("roku.json", render_roku(empty))
    assert roku["shortFormVideos"] == [] and roku["lastUpdated"] == "1970-01-01T00:00:00Z"
    assert roku["language"] == "en"
    assert valid_json("feed.json", render_json_feed(empty))["items"] == []
    text_only = FeedContext(SPEC, [_item(1, videos=())], SITE.origin, SITE)
    assert valid_json("roku.json", render_roku(text_only))["shortFormVideos"] == []


def test_hubs_are_announced_when_configured():
    with_hub = dataclasses.replace(SITE, websub_hubs=("https://hub.example/",))
    doc = valid_json("feed.json",
                 render_json_feed(FeedContext(SPEC, [_item(1)], SITE.origin, with_hub)))
    assert doc["hubs"] == [{"type": "WebSub", "url": "https://hub.example/"}]


def test_non_ascii_paths_become_valid_uris():
    spec = FeedSpec("haberler/türkiye", "Türkiye", "Haberler")
    item = _item(1, url="https://news.example/haberler/türkiye/ç ok")
    doc = valid_json("feed.json", render_json_feed(FeedContext(spec, [item], SITE.origin,
                                                                       SITE)))
    assert doc["feed_url"] == "https://news.example/feeds/haberler/t%C3%BCrkiye/feed.json"
    assert doc["items"][0]["url"] == "https://news.example/haberler/t%C3%BCrkiye/%C3%A7%20ok"


HOSTILE = st.lists(
    st.one_of(st.text(), st.sampled_from(
        ["]]>", "<b>bold</b>", "</script>", "<![CDATA[", "\x00", "\x1f", "\u2028", '"', "\\"]
    )),
    max_size=6,
).map("".join)


@hypothesis.settings(max_examples=150, deadline=None)
@given(title=HOSTILE, summary=HOSTILE, tags=st.lists(HOSTILE, max_size=6))
def test_arbitrary_text_gives_valid_documents(title, summary, tags):
    ctx = FeedContext(SPEC, [_item(1, title=title, summary=summary, tags=tuple(tags))],
                      SITE.origin, SITE)
    feed = valid_json("feed.json", render_json_feed(ctx))
    assert feed["items"][0].get("title", "") == title
    roku = valid_json("roku.json", render_roku(ctx))
    assert len(roku["shortFormVideos"]) == (1 if title.strip() else 0)
    for video in roku["shortFormVideos"]:
        assert video["title"] == title.strip() and video["shortDescription"]


def test_roku_keeps_what_fits_by_the_size_it_is_given():
    """The size Roku's limit applies to is passed in (the largest copy on any address,
    feedsvc.render.mirrors): counted double, half as many videos fit."""
    words = "lengthy " * 120
    items = [_item(n, title=f"{n} {words}", summary=words * 2) for n in range(400)]
    items.reverse()
    alone = FeedContext(SPEC, items, SITE.origin, SITE, largest_copy=len)
    doubled = FeedContext(SPEC, items, SITE.origin, SITE, largest_copy=lambda body: 2 * len(body))
    kept = len(json.loads(render_roku(alone))["shortFormVideos"])
    kept_doubled = len(json.loads(render_roku(doubled))["shortFormVideos"])
    assert 0 < kept < len(items) and abs(2 * kept_doubled - kept) <= 2


def test_roku_ids_are_the_item_uuids():
    item = _item(1)
    [video] = json.loads(render_roku(FeedContext(SPEC, [item], SITE.origin, SITE)))[
        "shortFormVideos"]
    assert item.id.uuid.version == 5 and video["id"] == item.id.uuid.hex
    assert item.id == f"urn:uuid:{item.id.uuid}"  # the one spelling every other format writes
