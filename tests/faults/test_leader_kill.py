"""The scheduler leader killed (SIGKILL) in the middle of a full rebuild."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from datetime import UTC, datetime

from article_generator import generate_articles, write_jsonl
from feedcheck import assert_valid
from feedsvc.cache import FeedKey
from feedsvc.model import section_slug
from feedsvc.refresh.refresher import ATOMIC_FEEDS, MAX_INCREMENTAL_CHANGES
from feedsvc.render.formats import FORMATS

from .readers import HOSTS, Readers, fetch, served_titles

# More new feeds than one transaction publishes: the rebuild takes two, so a reader of the
# cache can see it half done.
SECTIONS = [f"{('News', 'World')[n % 2]}/Region {n}" for n in range(ATOMIC_FEEDS + 8)]
CANONICAL = "https://news.example"


def _rendered(cache, paths: list[str]) -> int:
    """How many of the feeds at `paths` have their canonical RSS document in the cache."""
    with cache.client.pipeline(transaction=False) as pipe:
        for path in paths:
            pipe.exists(cache.redis_key(FeedKey(path, "rss.xml", CANONICAL)))
        return sum(pipe.execute())


def test_leader_killed_mid_rebuild_leaves_whole_feeds_and_the_other_takes_over(
    deployment, private_redis, tmp_path, spawn
):
    """An import of more changes than an incremental refresh takes makes the leader rebuild
    every feed, a transaction of feeds at a time; it is killed once some but not all of the
    new sections' feeds are in the cache and before it records the refresh. Readers see whole
    feeds throughout; the second scheduler takes the lease, rebuilds, and every feed of every
    new section is served, valid, in every format."""
    deployed = deployment(private_redis(), refresh_interval=60, leader_lease=2,
                          items_per_feed=10)
    leader = deployed.scheduler()
    deployed.wait_for_refresh()
    survivor = deployed.scheduler()
    port = deployed.web()
    batch = tmp_path / "big.jsonl"
    articles = list(generate_articles(
        MAX_INCREMENTAL_CHANGES + 200, seed=6, start=datetime(2026, 11, 26, tzinfo=UTC),
        sections=SECTIONS, spacing_seconds=20))
    write_jsonl(batch, articles)
    paths = [section_slug(name.split("/")) for name in SECTIONS]
    cache = deployed.cache

    with Readers(port) as readers:
        time.sleep(1)  # the start-up refreshes are over
        before = cache.get_state("refresh")
        deployed.import_(batch)  # announced: the leader refreshes at once
        deadline = time.monotonic() + 60
        while not 0 < (done := _rendered(cache, paths)) < len(paths):
            assert time.monotonic() < deadline and done == 0, f"{done} feeds rendered"
            time.sleep(0.01)
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(5)
        assert cache.get_state("refresh") == before, "the rebuild had finished"
        assert spawn.log(leader).count("full refresh:") == 1  # its start-up rebuild only
        deadline = time.monotonic() + 40
        while cache.get_state("refresh") == before:
            assert time.monotonic() < deadline, spawn.log(survivor)[-3000:]
            time.sleep(0.1)
        assert json.loads(cache.get_state("refresh"))["kind"] == "full"
        time.sleep(1)
    readers.assert_clean(at_least=10)
    assert survivor.poll() is None
    assert _rendered(cache, paths) == len(paths)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for path in paths:
        for filename in FORMATS:
            status, _, body = fetch(conn, f"/feeds/{path}/{filename}", HOSTS[0])
            assert status == 200, (path, filename)
            assert_valid(filename, body, (path, filename))
    conn.close()
    for host in HOSTS:
        assert served_titles(port, "/feeds/rss.xml", host)[0] == articles[0]["title"], host
