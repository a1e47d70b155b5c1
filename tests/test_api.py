"""The ingest API (feedsvc/ingest/api.py, docs/openapi.yaml) over real HTTP, Redis and stores:
the web process as the Procfile runs it with a scheduler, and the composed app (feedsvc.wsgi)
behind a threaded server for the refusals. Every response is checked against the OpenAPI
file's schema for its path, method and status (apispec.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from pathlib import Path

import feedparser
import pytest
import redis
import requests

from apispec import API
from conftest import DEMO_ARTICLES, REDIS_URL, LiveServer
from feedcheck import assert_valid
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, RedisCache
from feedsvc.cache.announce import channel
from feedsvc.config import ApiToken, Settings
from feedsvc.ingest.importer import Importer
from feedsvc.ingest.tokens import hash_token
from feedsvc.refresh import Refresher
from feedsvc.store import Store
from feedsvc.wsgi import create_app
from processes import BIN, Service, enable_api

TOKEN = "cms-secret-0123456789abcdefghijklmnopqrstuvwxyz"
OTHER = "another-secret-0123456789abcdefghijklmnopqrstuv"
ADDRESSES = ("https://news.example", "https://news-mirror.example")
TURKEY = "/feeds/news/turkey/"


def article(article_id: str, title: str, **fields: object) -> dict[str, object]:
    """A document newer than every demo article, in News/Turkey."""
    return {"id": article_id, "url": f"/news/turkey/{article_id}", "section": "News/Turkey",
            "title": title, "published": "2026-11-24T10:00:00Z", **fields}


def with_tokens(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, api_tokens=(ApiToken("cms", hash_token(TOKEN)),),
                               **changes)


@pytest.fixture
def api(settings: Settings, database_url: str, redis_client: redis.Redis, redis_prefix: str):
    """The composed web app with the API on, over a fresh store and the test's Redis keys."""
    servers: list[LiveServer] = []
    stores: list[Store] = []

    def start(**changes: object) -> tuple[API, Store, RedisCache]:
        chosen = with_tokens(settings, database_url=database_url, redis_url=REDIS_URL,
                             cache_prefix=redis_prefix, **changes)
        stores.append(Store(chosen.database_url))
        cache = RedisCache(redis_client, redis_prefix)
        servers.append(LiveServer(create_app(chosen, stores[-1], cache)))
        return API(servers[-1].url, TOKEN), stores[-1], cache

    yield start
    for server in servers:
        server.stop()
    for store in stores:
        store.close()


def feed_titles(url: str, host: str, filename: str = "rss.xml") -> list[str]:
    response = requests.get(url + TURKEY + filename, headers={"Host": host}, timeout=5)
    assert response.status_code == 200
    assert_valid(filename, response.content, (host, filename))
    if filename.endswith(".json"):
        return [item["title"] for item in response.json()["items"]]
    return [e.title for e in feedparser.parse(response.content).entries]


def test_put_delete_and_batch_through_the_procfile_web_and_scheduler(
        spawn, tmp_path: Path, database_url: str, redis_prefix: str):
    """A PUT is in the served feed on every address within seconds (announced: the
    scheduler's timer is a minute away); the same PUT again refreshes nothing; a DELETE takes
    it out; a batch puts its good items in."""
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, database_url=database_url,
                             prefix=redis_prefix, refresh_interval=60)
    enable_api(Path(service.env["FEEDSVC_CONFIG"]), TOKEN)
    service.import_(DEMO_ARTICLES)
    service.scheduler()
    first = service.wait_for_refresh()
    port = service.web()
    web = f"http://127.0.0.1:{port}"
    client = API(web, TOKEN)

    doc = article("api-1", "Pushed by the CMS")
    assert client.put("api-1", doc).status == 201
    # granian keeps the bytes of a path in PATH_INFO alone: one not UTF-8 is refused there too
    nameless = {k: v for k, v in doc.items() if k != "id"}
    assert client.call("PUT", "/api/articles/%ff%fe", nameless).status == 400
    for address in ADDRESSES:
        host = address.removeprefix("https://")
        wait_for(lambda h=host: "Pushed by the CMS" in feed_titles(web, h), 5)
        for filename in ("atom.xml", "feed.json"):
            assert "Pushed by the CMS" in feed_titles(web, host, filename)

    time.sleep(0.5)  # the triggered refresh recorded
    refreshed = service.cache.get_state("refresh")
    assert refreshed != json.dumps(first)
    etags = {a: etag(service.cache, a) for a in ADDRESSES}
    assert client.put("api-1", doc).json == {"id": "api-1", "result": "unchanged"}
    time.sleep(1.5)  # an announced refresh starts within milliseconds
    # No refresh ran, or one that found no change (the new leader's catch-up, due a lease
    # third after its start, may fall here on a loaded machine) and rendered nothing.
    after = service.cache.get_state("refresh")
    assert after == refreshed or (json.loads(after)["changes"], json.loads(after)["documents"]) \
        == (0, 0), after
    assert {a: etag(service.cache, a) for a in ADDRESSES} == etags

    assert client.delete("api-1").status == 204
    wait_for(lambda: "Pushed by the CMS" not in feed_titles(web, "news-mirror.example"), 5)
    assert "Pushed by the CMS" not in feed_titles(web, "news.example")

    batch = client.batch([article("api-2", "Batch good"), {"id": "api-3", "title": "No url"}])
    assert batch.json["created"] == 1 and batch.json["rejected"] == 1
    wait_for(lambda: "Batch good" in feed_titles(web, "news.example"), 5)


def etag(cache: RedisCache, address: str) -> str | None:
    entry = cache.get(FeedKey("news/turkey", "rss.xml", address))
    return entry.etag if entry else None


def wait_for(check, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds}s"
        time.sleep(0.05)


def test_an_unchanged_put_writes_announces_and_renders_nothing(api, redis_client, redis_prefix,
                                                               settings):
    client, store, cache = api()
    refresher = Refresher(FeedBuilder(settings, store, cache))
    doc = article("same-1", "Said once")
    assert client.put("same-1", doc).json["result"] == "created"
    refresher.full()
    etags = {a: etag(cache, a) for a in ADDRESSES}
    with redis_client.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(channel(redis_prefix))
        pubsub.get_message(timeout=1)  # the subscription confirmed
        mark = time.time()
        assert client.put("same-1", doc).json == {"id": "same-1", "result": "unchanged"}
        assert pubsub.get_message(timeout=1) is None  # nothing announced
        assert [c.id for c in store.changed_since(_utc(mark))] == []  # nothing written
        assert refresher.incremental().documents == 0
        assert {a: etag(cache, a) for a in ADDRESSES} == etags

        assert client.put("same-1", {**doc, "title": "Said twice"}).json["result"] == "updated"
        assert pubsub.get_message(timeout=1)["data"] == b"import"
        assert [c.id for c in store.changed_since(_utc(mark))] == ["same-1"]
        refresher.incremental()
        assert all(etag(cache, a) != etags[a] for a in ADDRESSES)


def _utc(seconds: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


def test_a_batch_reports_each_item_and_stores_the_good_ones(api):
    client, store, _ = api()
    client.put("old-1", article("old-1", "Old"))
    items = [article("b-1", "Good one"), {"id": "b-2", "section": "News", "title": "No URL",
                                          "published": "2026-11-24T10:00:00Z"},
             "not an object", article("old-1", "Old"), article("old-2", "New"),
             article("b-1", "Good one, again")]
    response = client.batch(items)
    assert response.status == 200
    assert response.json["results"] == [
        {"index": 0, "id": "b-1", "result": "created"},
        {"index": 1, "id": "b-2", "result": "rejected", "errors": ["url: is required"]},
        {"index": 2, "result": "rejected", "errors": ["(document): must be a JSON object"]},
        {"index": 3, "id": "old-1", "result": "unchanged"},
        {"index": 4, "id": "old-2", "result": "created"},
        {"index": 5, "id": "b-1", "result": "rejected",
         "errors": ["id: 'b-1' is also item 0 of the batch"]},
    ]
    assert {k: response.json[k] for k in ("created", "updated", "unchanged", "rejected")} == {
        "created": 2, "updated": 0, "unchanged": 1, "rejected": 3}
    assert store.get("b-1").title == "Good one" and store.get("b-2") is None
    assert client.batch([article(f"n-{i}", "x") for i in range(1001)]).json["errors"] == [
        "articles: has 1001 entries, the limit is 1000"]
    assert store.get("n-0") is None


def test_a_bad_document_gets_the_importers_messages(api, settings, tmp_path):
    client, store, _ = api()
    bad = {"url": "ftp://x", "section": "", "title": 5, "published": "yesterday",
           "images": [{"url": "/a.jpg", "width": -1}]}
    lines = tmp_path / "bad.jsonl"
    lines.write_text(json.dumps({**bad, "id": "bad-1"}) + "\n")
    errors = io.StringIO()
    assert Importer(settings, store, errors=errors, progress=False).import_paths(
        [lines]).rejected == 1
    expected = [line.removeprefix(f"{lines}:1: ") for line in errors.getvalue().splitlines()]
    response = client.put("bad-1", bad)
    assert response.status == 422
    assert response.json["errors"] == expected and len(expected) >= 4
    assert client.put("bad-1", [bad]).json["errors"] == ["(document): must be a JSON object"]


def test_the_url_id_names_the_article(api):
    """The document may leave the id out (the URL's is used); a different one is refused.
    Ids may hold any character, '/' too, percent-encoded in the URL."""
    client, store, _ = api()
    doc = article("a/b c", "Slashed")
    del doc["id"]
    assert client.put("a/b c", doc).status == 201
    assert store.get("a/b c").title == "Slashed"
    refused = client.put("other", article("a/b c", "Slashed"))
    assert refused.status == 422
    assert refused.json["errors"] == ["id: 'a/b c' is not the id in the URL, 'other'"]
    assert client.delete("a/b c").status == 204
    assert store.get("a/b c").status == "deleted"
    assert client.delete("a/b c").status == 204  # deleted already: the same answer
    assert client.delete("never-sent").status == 404


def test_without_a_configured_token_everything_is_401(api):
    client, store, _ = api()
    doc = article("t-1", "x")
    for headers in ({"Authorization": None}, {"Authorization": f"Bearer {OTHER}"},
                    {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": "Bearer "}):
        for method, path in (("PUT", "/api/articles/t-1"), ("GET", "/api/articles/t-1"),
                             ("POST", "/api/articles:batch"), ("GET", "/api/nothing")):
            response = client.call(method, path, doc, headers=headers)
            assert response.status == 401, (headers, method, path)
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="feedsvc"')
    assert store.get("t-1") is None


def test_refusals_of_method_type_size_json_and_rate(api):
    client, _, _ = api(api_max_body_bytes=2000, api_rate_limit=0.5, api_rate_limit_burst=8)
    wrong_method = client.call("GET", "/api/articles/x")
    assert wrong_method.status == 405 and "PUT" in wrong_method.headers["Allow"]
    assert client.call("GET", "/api/nothing").status == 404
    assert client.call("PUT", "/api/articles/x", b"{}",
                       headers={"Content-Type": "text/plain"}).status == 415
    assert client.call("PUT", "/api/articles/x", b"{}", headers={
        "Content-Type": "application/json; charset=latin-1"}).status == 415
    too_big = client.put("x", article("x", "y" * 3000))
    assert too_big.status == 413
    malformed = client.call("PUT", "/api/articles/x", b'{"id": "x",')
    assert malformed.status == 400 and "not JSON" in malformed.json["error"]
    assert client.call("PUT", "/api/articles/x", b'{"id": "\xff"}').status == 400
    statuses = [client.put("x", article("x", "y")).status for _ in range(4)]
    assert statuses[-1] == 429
    limited = client.put("x", article("x", "y"))
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1


def test_json_beyond_what_is_read_is_a_short_400_with_nothing_written_or_traced(api, caplog):
    """Python's json module raised on these (ValueError, RecursionError): a 500 with a
    traceback in the log; or it took the last of two keys. The importer reads them alike
    (test_import.py)."""
    client, store, _ = api()
    doc = json.dumps(article("j-1", "Bounded"))[:-1]
    bodies = {
        doc + ', "videos": [{"url": "/v", "duration": 1' + "0" * 4999 + "}]}":
            "a number is 5000 characters long, the limit is 100",
        doc + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}":
            "arrays and objects nest deeper than the limit of 64 levels",
        doc + ', "extra": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}":
            "arrays and objects nest deeper than the limit of 64 levels",
        doc + ', "title": "A second title"}': "the key 'title' is given twice in one object",
        doc + ', "videos": [{"url": "/v", "duration": Infinity}]}':
            "Infinity is not a JSON value",
    }
    with caplog.at_level(logging.INFO):
        for body, reason in bodies.items():
            for path, sent in (("/api/articles/j-1", body),
                               ("/api/articles:batch", '{"articles": [' + body + "]}")):
                response = client.call("PUT" if path.endswith("j-1") else "POST", path,
                                       sent.encode())
                assert response.status == 400, (path, reason)
                assert response.json == {"error": f"400 Bad Request: {reason}"}
    assert store.get("j-1") is None
    traced = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not traced, [r.getMessage() for r in traced]
    assert client.put("j-1", json.loads(doc + "}")).status == 201


def test_a_store_that_refuses_gets_503_and_nothing_is_announced(settings, redis_client,
                                                                 redis_prefix):
    down = with_tokens(settings, database_url="postgresql://postgres@127.0.0.1:1/none",
                       redis_url=REDIS_URL, cache_prefix=redis_prefix)
    server = LiveServer(create_app(down, None, RedisCache(redis_client, redis_prefix)))
    try:
        response = API(server.url, TOKEN).put("d-1", article("d-1", "Down"))
        assert response.status == 503 and response.headers["Retry-After"] == "5"
    finally:
        server.stop()


def test_the_api_is_off_without_tokens(settings, redis_cache):
    server = LiveServer(create_app(settings, None, redis_cache))
    try:
        response = requests.put(server.url + "/api/articles/x", json=article("x", "y"),
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert response.status_code == 404  # the feeds app's: no /api/ there
    finally:
        server.stop()


@pytest.mark.slow  # runs the console script
def test_hash_token_prints_what_the_config_takes(tmp_path):
    import subprocess

    done = subprocess.run([str(BIN / "feedsvc"), "api", "hash-token"], input=TOKEN + "\n",
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == hash_token(TOKEN)
    short = subprocess.run([str(BIN / "feedsvc"), "api", "hash-token"], input="secret\n",
                           capture_output=True, text=True, timeout=30)
    assert short.returncode == 1 and "at least 32" in short.stderr
