"""Reach end to end: a scripted stream of feed requests from several readers, aggregators and
a browser, on several client addresses and two site addresses, over real HTTP; counted by the
web into real Redis, rolled up into the store (SQLite and PostgreSQL), served by
`/admin/reach.json` and `/admin/` with the right numbers: across a UTC day boundary (the clock
injected), across a flush of the reach keys in Redis, and in headless Chromium on the real
processes (the Procfile's web on granian and scheduler), which saves a screenshot. No client
address or User-Agent of the stream reaches the store, the report or the page."""

from __future__ import annotations

import dataclasses
import json
import time as clock
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from conftest import DEMO_ARTICLES, REDIS_URL, ROOT
from feedsvc.ingest.importer import Importer
from feedsvc.refresh.reach import ReachRollup
from feedsvc.store import Store
from processes import Service, article_line

TOKEN = "reach-stream-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CANON, MIRROR = "https://news.example", "https://news-mirror.example"
NEWSBOAT = "Newsboat/2.36 (Linux x86_64)"
NETNEWSWIRE = "NetNewsWire (RSS Reader; https://netnewswire.com/)"
FEEDLY = ("Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; "
          "like FeedFetcher-Google)")
INOREADER = "Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 42 subscribers; )"
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")
# (client address, User-Agent, Host, feed, polls): the first poll gets a 200, the others a 304
STREAM = [
    ("198.51.100.1", NEWSBOAT, "news.example", "rss.xml", 3),
    ("198.51.100.2", NEWSBOAT, "news.example", "rss.xml", 2),
    ("198.51.100.3", NEWSBOAT, "news.example", "rss.xml", 2),
    ("198.51.100.3", NEWSBOAT, "news-mirror.example", "rss.xml", 2),  # one client, two addresses
    ("198.51.100.4", NEWSBOAT, "news-mirror.example", "rss.xml", 1),
    ("2001:db8::5", NETNEWSWIRE, "news.example", "rss.xml", 2),
    ("192.0.2.10", FEEDLY, "news.example", "rss.xml", 2),
    ("192.0.2.11", INOREADER, "news-mirror.example", "news/turkey/atom.xml", 2),
    ("198.51.100.9", BROWSER, "news-mirror.example", "news/turkey/atom.xml", 1),
]
# What the stream must come to: rss.xml has 4 distinct Newsboat clients + 1 NetNewsWire +
# Feedly's 131; the Turkey Atom feed Inoreader's 42 + 1 browser.
SUBSCRIBERS = {"rss.xml": 136, "news/turkey/atom.xml": 43}
BY_ADDRESS = {CANON: 3 + 1 + 131, MIRROR: 2 + 42 + 1}
POLLS = {"newsboat": 10, "netnewswire": 2, "feedly": 2, "inoreader": 2, "browser": 1}
# .gitignored; docs/admin-page.png, which the README shows, is a copy of one
ARTEFACTS = ROOT / "tests" / "artefacts"


@dataclasses.dataclass
class Played:
    """What the stream was answered, as the client saw it."""

    requests: int = 0
    not_modified: int = 0
    bytes_sent: int = 0
    bytes_saved: int = 0


def play(base: str, stream: list = STREAM) -> Played:
    played = Played()
    for address, user_agent, host, feed, polls in stream:
        headers = {"User-Agent": user_agent, "Host": host, "X-Forwarded-For": address,
                   "Accept-Encoding": "identity"}
        first = requests.get(f"{base}/feeds/{feed}", headers=headers, timeout=10)
        assert first.status_code == 200, (host, feed, first.status_code)
        played.requests += 1
        played.bytes_sent += len(first.content)
        for _ in range(polls - 1):
            again = requests.get(f"{base}/feeds/{feed}", timeout=10,
                                 headers={**headers, "If-None-Match": first.headers["ETag"]})
            assert again.status_code == 304
            played.requests += 1
            played.not_modified += 1
            played.bytes_saved += len(first.content)
    return played


def assert_counted(report: dict, played: Played, day_index: int = -1) -> None:
    """`report` has the stream's numbers (once)."""
    assert {f["feed"]: f["subscribers"] for f in report["feeds"]} == SUBSCRIBERS
    assert {a["name"]: a["readers"] for a in report["addresses"]} == BY_ADDRESS
    assert {f["name"]: f["requests"] for f in report["families"]} == POLLS
    (rss,) = [f for f in report["feeds"] if f["feed"] == "rss.xml"]
    assert rss["top_readers"][0] == {"name": "feedly", "readers": 131,
                                     "share": round(131 / 137, 4)}  # a poller on two addresses
    traffic = report["traffic"][day_index]
    assert (traffic["requests"], traffic["not_modified"], traffic["bytes_sent"],
            traffic["bytes_saved"]) == (played.requests, played.not_modified, played.bytes_sent,
                                        played.bytes_saved)


def assert_nothing_of_the_clients(store: Store, *published: str) -> None:
    """No client address or User-Agent of the stream in the reach tables or what was
    published (the report, the page)."""
    with store.engine.connect() as conn:
        stored = [repr(row) for table in ("reach_traffic", "reach_feed_pollers",
                                          "reach_aggregators")
                  for row in conn.execute(text(f"SELECT * FROM {table}"))]
    assert stored
    everything = "\n".join([*stored, *published])
    for address, user_agent, *_ in STREAM:
        assert address not in everything
        assert user_agent not in everything
        assert user_agent.split(" ")[0] not in everything  # "Newsboat/2.36", "Feedly/1.0"...


@pytest.fixture
def site(settings, database_url: str, redis_cache, live_server_factory) -> Iterator[tuple]:
    """The demo articles in the store, served over HTTP through Redis with the admin on a
    token, behind a trusted proxy (the stream's client addresses are X-Forwarded-For)."""
    configured = dataclasses.replace(settings, database_url=database_url, reach_enabled=True,
                                     trusted_proxies=("127.0.0.1",),
                                     admin_token_hash=generate_password_hash(TOKEN))
    store = Store(database_url)
    assert Importer(configured, store, progress=False).import_paths([DEMO_ARTICLES]).accepted
    server = live_server_factory(configured, store, redis_cache)
    yield server, store
    store.close()


def test_a_stream_is_counted_right_across_a_day_and_a_flush_of_redis(site, redis_cache,
                                                                     redis_client, redis_prefix):
    server, store = site
    counter = server.app.extensions["feedsvc"].reach
    today = datetime.now(UTC).date()  # a day's hashing key lives until an hour after it
    now = datetime.combine(today, time(23, 59, 58), UTC)
    counter.clock = lambda: now.timestamp()
    rollup = ReachRollup(store, redis_cache.reach(), redis_cache, lambda: now)

    played = play(server.url)
    counter.flush()
    rollup.run()
    report = requests.get(f"{server.url}/admin/reach.json", headers=BEARER, timeout=10).json()
    assert report["today"] == today.isoformat()
    assert_counted(report, played)

    now += timedelta(seconds=4)  # past midnight: the same stream again, on the next day
    played_again = play(server.url)
    counter.flush()
    rollup.run()
    report = requests.get(f"{server.url}/admin/reach.json", headers=BEARER, timeout=10).json()
    assert report["today"] == (today + timedelta(days=1)).isoformat()
    assert_counted(report, played_again)
    assert len(report["traffic"]) == 2 and report["traffic"][0]["requests"] == played.requests
    assert [f["history"][-2:] for f in report["feeds"]] == [[136, 136], [43, 43]]

    reach_keys = list(redis_client.scan_iter(match=f"{redis_prefix}reach*"))
    assert reach_keys
    redis_client.delete(*reach_keys)  # Redis loses the counts (a restart without persistence)
    rollup.run()
    report = requests.get(f"{server.url}/admin/reach.json", headers=BEARER, timeout=10).json()
    assert_counted(report, played_again)
    assert report["traffic"][0]["requests"] == played.requests  # yesterday, from SQL

    page = requests.get(f"{server.url}/admin/", headers=BEARER, timeout=10).text
    assert_nothing_of_the_clients(store, json.dumps(report), page)


# ---- the real processes, and a browser -------------------------------------------------------

def deploy(spawn, tmp_path: Path, redis_prefix: str, database_url: str) -> tuple[Service, int]:
    """The Procfile's web (granian) and scheduler, rolling up every second, admin on a token."""
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, database_url=database_url,
                             prefix=redis_prefix, reach=True, rollup_interval=1)
    config = Path(service.env["FEEDSVC_CONFIG"])
    config.write_text(config.read_text()
                      .replace('token_hash = ""',
                               f'token_hash = "{generate_password_hash(TOKEN)}"')
                      .replace("trusted_proxies = []", 'trusted_proxies = ["127.0.0.1"]'))
    service.import_(DEMO_ARTICLES)
    service.scheduler()
    service.wait_for_refresh()
    news = tmp_path / "news.jsonl"  # imported while the scheduler runs: a freshness record
    news.write_text(article_line("reach-news", "Counted readers"))
    service.import_(news)
    return service, service.web()


def reach_report(base: str, until: dict[str, int], seconds: float = 30) -> dict:
    """The published report, once it shows `until` (feed -> subscribers)."""
    deadline = clock.monotonic() + seconds
    while True:
        response = requests.get(f"{base}/admin/reach.json", headers=BEARER, timeout=10)
        if response.status_code == 200:
            report = response.json()
            if ({f["feed"]: f["subscribers"] for f in report["feeds"]} == until
                    and report["freshness"]):
                return report
        assert clock.monotonic() < deadline, f"not counted within {seconds}s: {response.text}"
        clock.sleep(0.2)


def test_the_page_shows_the_stream_in_a_browser(redis_prefix, spawn, tmp_path, sqlite_url,
                                                browser):
    """(`spawn` after `redis_prefix`: the processes stop, writing their last counts, before
    the test's keys are deleted.)"""
    _, port = deploy(spawn, tmp_path, redis_prefix, sqlite_url)
    base = f"http://127.0.0.1:{port}"
    played = play(base)
    report = reach_report(base, SUBSCRIBERS)
    assert_counted(report, played)

    context = browser.new_context(extra_http_headers=BEARER, viewport={"width": 1000,
                                                                       "height": 800})
    page = context.new_page()
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else elsewhere.append(r.url))
    try:
        assert page.goto(f"{base}/admin/").status == 200
        assert page.text_content("#total") == f"{sum(SUBSCRIBERS.values()):,}"
        rows = {r.get_attribute("data-feed"): r.inner_text().split("\t")
                for r in page.query_selector_all("#feeds tbody tr")}
        assert {feed: cells[1] for feed, cells in rows.items()} == {
            feed: f"{n:,}" for feed, n in SUBSCRIBERS.items()}
        assert rows["rss.xml"][3] == "feedly 131, newsboat 5, netnewswire 1"
        charts = page.query_selector_all("svg.chart")
        assert len(charts) == 7
        for chart in charts:
            box = chart.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 10
        counts = {section: len(page.query_selector_all(f"#chart-{section} .bar"))
                  for section in ("addresses", "families", "not-modified", "bytes-saved")}
        assert counts == {"addresses": 2, "families": 5, "not-modified": 1, "bytes-saved": 1}
        lines = page.query_selector_all("#chart-subscribers .series")
        assert [len(line.get_attribute("points").split()) for line in lines] == [90, 90]
        assert len(page.query_selector_all("#chart-freshness .bar")) == len(
            report["freshness"]) >= 1
        for bar in page.query_selector_all("#chart-families .bar"):
            assert bar.bounding_box()["width"] > 0
        ARTEFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTEFACTS / "admin-page.png", full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate("document.querySelector('.scroll').scrollWidth") > 390
        page.screenshot(path=ARTEFACTS / "admin-page-phone.png", full_page=True)
        assert elsewhere == []
    finally:
        context.close()
