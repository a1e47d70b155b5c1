"""The service on a real 3-primary Redis Cluster (`REDIS_URL=redis+cluster://...`): the cache's
keys share one slot so that a refresh publishes in one MULTI/EXEC, the web's in-process copies
follow the slot's owner's notices, and the leader lock and the import trigger work."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import feedparser
import pytest
import requests

from conftest import DEMO_ARTICLES
from feedsvc.build import FeedBuilder
from feedsvc.cache import (
    AggregatorCount,
    FeedKey,
    NearCache,
    ReachBatch,
    RedisCache,
    RenderedFeed,
    TrafficRow,
)
from feedsvc.cache.announce import TriggerListener, announce
from feedsvc.cache.lease import LeaderLock
from feedsvc.ingest.importer import Importer
from feedsvc.redis_client import CLUSTER_SCHEME, Endpoints, connect, parse
from feedsvc.refresh import Refresher
from feedsvc.web import create_app
from processes import Service, article_line
from topology import eventually, move_slot

PREFIX = "feedsvc-topology:"
TURKEY = FeedKey("news/turkey", "rss.xml", "https://news.example")


def _entry(text: str):
    return RenderedFeed.of(text.encode(), "application/rss+xml; charset=utf-8",
                           datetime.now(UTC)).compress()


def test_cluster_urls():
    assert parse("redis+cluster://a:7000,b:7001") == Endpoints(
        CLUSTER_SCHEME, (("a", 7000), ("b", 7001)), None)
    with pytest.raises(ValueError, match="no path"):
        parse("redis+cluster://a:7000/1")


@pytest.fixture
def cluster_cache(redis_cluster) -> RedisCache:
    return RedisCache.from_url(redis_cluster.url, PREFIX)


def test_reach_counts_live_in_the_caches_slot_and_add_up(cluster_cache):
    """The day's HyperLogLogs are counted together (PFCOUNT of several keys: one slot)."""
    day = datetime.now(UTC).date()
    a, b = "https://a.example", "https://b.example"
    reach = cluster_cache.reach()
    for _ in range(2):
        reach.record(ReachBatch(day, traffic={("rss.xml", a, "newsboat"): [1, 1, 0, 500]},
                                clients={("rss.xml", a, "newsboat"): {("192.0.2.1", "N/1")},
                                         ("rss.xml", b, "roku"): {("192.0.2.2", "R/1")}},
                                aggregators={("feedly", "", "rss.xml", a): 9}))
    counted = reach.day(day)
    assert counted.traffic == (TrafficRow("rss.xml", a, "newsboat", 2, 2, 0, 1000),)
    assert counted.pollers_by_feed == {"rss.xml": 2}
    assert counted.aggregators == (AggregatorCount("feedly", "", "rss.xml", a, 9),)
    client = cluster_cache.client
    names = list(client.scan_iter(match=f"{{{PREFIX}}}reach*", target_nodes=client.ALL_NODES))
    assert len(names) == 6  # traffic, aggregators, the index, two HLLs, the day's key
    assert {client.keyslot(name) for name in names} == {client.keyslot(PREFIX)}


def test_one_publish_is_one_transaction_in_one_slot(cluster_cache, redis_cluster):
    keys = [FeedKey(path, fmt, origin) for path in ("", "news", "world")
            for fmt in ("rss.xml", "atom.xml") for origin in ("https://a.example", "https://b")]
    cluster_cache.put_many({key: _entry(str(key)) for key in keys})
    cluster_cache.set_state("watermark", "w")
    names = [cluster_cache.redis_key(key) for key in keys]
    client = cluster_cache.client
    assert {client.keyslot(name) for name in [*names, f"{{{PREFIX}}}state:watermark"]} == {
        client.keyslot(PREFIX)}
    assert all(cluster_cache.get(key).body == str(key).encode() for key in keys)
    assert cluster_cache.get_state("watermark") == "w"
    assert set(cluster_cache.etags(keys).values()) == {
        _entry(str(key)).etag for key in keys}
    # the keys are where the slot is, and only there
    owner = client.get_node_from_key(PREFIX).port
    sizes = {port: client.get_redis_connection(client.get_node("127.0.0.1", port)).dbsize()
             for port in redis_cluster.ports}
    assert sizes == {port: len(keys) + 1 if port == owner else 0 for port in sizes}


def test_refresh_serve_and_follow_a_change_through_in_process_copies(
        cluster_cache, settings, store, redis_cluster, tmp_path):
    importer = Importer(settings, store, progress=False)
    assert importer.import_paths([DEMO_ARTICLES]).rejected == 0
    refresher = Refresher(FeedBuilder(settings, store, cluster_cache))
    assert refresher.full().documents > 50

    near = NearCache(RedisCache.from_url(redis_cluster.url, PREFIX))
    app = create_app(settings, store, near)
    web = app.test_client()
    url, host = "/feeds/news/turkey/rss.xml", {"Host": "news.example"}
    first = web.get(url, headers=host)
    assert first.status_code == 200
    assert first.data == cluster_cache.get(TURKEY).body
    eventually(lambda: near._epoch is not None, 10, "tracking on the slot's owner")
    web.get(url, headers=host)  # read once more, now covered by the notices

    batch = tmp_path / "one.jsonl"
    batch.write_text(json.dumps({
        "id": "cluster-1", "url": "/news/turkey/cluster-1", "section": "News/Turkey",
        "title": "Fresh from the cluster", "published": "2026-11-25T00:00:00Z"}) + "\n")
    assert importer.import_paths([batch]).accepted == 1
    report = refresher.incremental()
    assert report.changes == 1 and report.documents == 36
    eventually(lambda: "Fresh from the cluster" in [
        e.title for e in feedparser.parse(web.get(url, headers=host).data).entries], 5,
        "the web process drops its copy on the owner's notice")
    near.close()


def test_one_leader_and_the_import_trigger(redis_cluster):
    first, second = connect(redis_cluster.url), connect(redis_cluster.url)
    leaders = [LeaderLock(c, f"{PREFIX}leader", lease=5) for c in (first, second)]
    assert [lock.hold() for lock in leaders] == [True, False]
    assert [lock.hold() for lock in leaders] == [True, False]  # renewed, still one
    leaders[0].release()
    assert leaders[1].hold()

    heard = threading.Event()
    listener = TriggerListener(second, PREFIX, heard.set)
    listener.start()
    try:
        # published on whichever node: Cluster passes it to every node's subscribers
        eventually(lambda: announce(first, PREFIX) or heard.wait(0.2), 10, "the trigger")
    finally:
        listener.stop()


def test_in_process_copies_follow_the_slot_to_its_new_owner(cluster_cache, redis_cluster):
    """A resharding moves the cache's slot to another primary: the web's listener notices
    within a heartbeat and tracks the new owner, so a later write still drops the copies."""
    near = NearCache(RedisCache.from_url(redis_cluster.url, PREFIX))
    cluster_cache.put_many({TURKEY: _entry("before")})
    assert near.get(TURKEY).body == b"before"
    eventually(lambda: near._epoch is not None, 10, "tracking on the slot's owner")
    epoch = near._epoch

    client = cluster_cache.client
    slot = client.keyslot(PREFIX)
    source = client.get_node_from_key(PREFIX)
    target = next(n for n in client.get_primaries() if n.port != source.port)
    move_slot(slot, source.port, target.port)
    eventually(lambda: near._epoch not in (None, epoch), 10, "tracking on the new owner")

    cluster_cache.put_many({TURKEY: _entry("after")})  # the client follows the MOVED answer
    eventually(lambda: near.get(TURKEY).body == b"after", 5, "the copy dropped")
    near.close()


def test_the_processes_on_the_cluster(redis_cluster, spawn, tmp_path):
    """The Procfile's web and scheduler with `REDIS_URL=redis+cluster://...`: the import's
    announcement reaches the scheduler through the cluster, and the new feed the web."""
    service = Service.deploy(spawn, tmp_path, redis_url=redis_cluster.url,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                             prefix=PREFIX, refresh_interval=60)
    service.import_(DEMO_ARTICLES)
    service.scheduler()
    service.wait_for_refresh()
    url = f"http://127.0.0.1:{service.web()}/feeds/news/turkey/rss.xml"
    assert requests.get(url, headers={"Host": "news.example"}, timeout=5).content == (
        service.cache.get(TURKEY).body)
    batch = tmp_path / "one.jsonl"
    batch.write_text(article_line("cluster-2", "Announced through the cluster"))
    service.import_(batch)  # the timer is a minute away: only the announcement can do it
    eventually(lambda: "Announced through the cluster" in requests.get(
        url, headers={"Host": "news.example"}, timeout=5).text, 10, "the import served")
