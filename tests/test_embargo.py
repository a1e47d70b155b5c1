"""Embargoed articles appear at their `published` time by themselves: the leading scheduler
arms a one-shot refresh at the next embargo time, re-armed after each refresh and by a new
leader, instead of waiting for the next interval refresh (a minute here)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import feedparser
import requests
from apscheduler.schedulers.background import BackgroundScheduler

from conftest import DEMO_ARTICLES, REDIS_URL
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey
from feedsvc.ingest.document import parse_article
from feedsvc.refresh import Refresher
from feedsvc.render.items import item_id
from feedsvc.wiring import refresh_service as RefreshService
from processes import Service
from topology import eventually

# An embargoed article shows this soon after its time, or the test fails.
ON_TIME = 2.0  # seconds


def _embargoed(settings, article_id: str, due: datetime):
    return parse_article({"id": article_id, "url": f"/world/{article_id}", "section": "World",
                          "title": f"Embargoed {article_id}", "published": due.isoformat()},
                         origin=settings.origin, timezone=settings.timezone)


def _seen_at(has_item, item: str, due: datetime) -> float:
    """Seconds after `due` that `has_item(item)` first holds; fails once it is late."""
    while not has_item(item):
        late = time.time() - due.timestamp()
        assert late < ON_TIME + 3, f"{item} not in the feed {late:.1f}s after its time"
        time.sleep(0.02)
    return time.time() - due.timestamp()


def test_embargoed_articles_appear_on_time_and_each_refresh_rearms_the_next(
        settings, store, redis_cache):
    """Two embargoes, the later one imported first: the refresh after the second import
    re-arms the one-shot refresh at the earlier time, the refresh at that time re-arms it at
    the later one. No import, trigger or interval refresh comes near either time."""
    settings = dataclasses.replace(settings, refresh_interval=60, leader_lease=300)
    service = RefreshService(settings, FeedBuilder(settings, store, redis_cache),
                             BackgroundScheduler())
    service.start()
    try:
        while redis_cache.get_state("refresh") is None:
            time.sleep(0.05)
        now = datetime.now(UTC)
        later, earlier = now + timedelta(seconds=6), now + timedelta(seconds=3)
        store.upsert([_embargoed(settings, "later", later)])
        service.trigger()
        store.upsert([_embargoed(settings, "earlier", earlier)])
        service.trigger()

        def has_item(article_id: str) -> bool:
            entry = redis_cache.get(FeedKey("world", "rss.xml", settings.origin))
            return item_id(article_id) in {e.id for e in feedparser.parse(entry.body).entries}

        assert not has_item("earlier") and not has_item("later")
        lateness = [_seen_at(has_item, "earlier", earlier)]
        assert not has_item("later")
        lateness.append(_seen_at(has_item, "later", later))
        assert all(0 <= late < ON_TIME for late in lateness), lateness
    finally:
        service.shutdown()


def test_an_article_stored_in_december_9999_leaves_the_embargo_timer_armed(
        settings, store, redis_cache):
    """Stored before dates were bounded (feedsvc.ingest.document refuses it now): every refresh
    died on its archive month's end, year 10000, before arming the timer; an embargo imported
    after it waited for nothing."""
    settings = dataclasses.replace(settings, refresh_interval=60, leader_lease=300)
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    builder = FeedBuilder(settings, store, redis_cache)
    Refresher(builder).full()  # the scheduler's refreshes are incremental from here
    store.upsert([dataclasses.replace(_embargoed(settings, "far", datetime(9998, 1, 1, tzinfo=UTC)),
                                      published=last, updated=last)])
    service = RefreshService(settings, builder, BackgroundScheduler())
    service.start()
    try:
        def armed_at() -> datetime | None:
            job = service.scheduler.get_job("embargo")
            return job.next_run_time if job else None

        assert eventually(armed_at, 5, "the embargo timer armed") == last
        soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        store.upsert([_embargoed(settings, "soon", soon)])
        service.trigger()
        eventually(lambda: armed_at() == soon, 5, "the timer re-armed for the next embargo")
    finally:
        service.shutdown()


def test_an_embargoed_article_is_served_on_time_after_the_leader_is_killed(
        spawn, tmp_path, redis_prefix):
    """Two scheduler processes and a web process; an article embargoed 10 s ahead is imported
    and the leading scheduler killed (SIGKILL) at once: the other takes the lead and the
    article is served over HTTP within 2 s of its time."""
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                             refresh_interval=60, leader_lease=2)
    service.import_(DEMO_ARTICLES)
    leader = service.scheduler()
    service.wait_for_refresh()
    standby = service.scheduler()
    port = service.web()
    time.sleep(1)  # the standby is up and sees the lease taken

    # 10 s: the import, its refresh and the kill take 1-2 s, over 4 s beside a full suite
    due = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    batch = tmp_path / "embargoed.jsonl"
    batch.write_text(json.dumps({"id": "embargoed", "url": "/world/embargoed",
                                 "section": "World", "title": "Embargoed until its second",
                                 "published": due.isoformat()}) + "\n")
    before = service.cache.get_state("refresh")
    service.import_(batch)
    while service.cache.get_state("refresh") == before:  # the leader's refresh of the import
        time.sleep(0.02)
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait(5)
    assert time.time() < due.timestamp() - 1, "too slow to kill the leader before the time"

    url = f"http://127.0.0.1:{port}/feeds/world/feed.json"

    def has_item(article_id: str) -> bool:
        items = requests.get(url, timeout=5).json()["items"]
        return item_id(article_id) in {i["id"] for i in items}

    assert not has_item("embargoed")
    late = _seen_at(has_item, "embargoed", due)
    assert 0 <= late < ON_TIME, spawn.log(standby)[-2000:]
    assert standby.poll() is None
