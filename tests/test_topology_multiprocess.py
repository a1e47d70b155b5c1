"""Two web processes and two schedulers against one Redis and one PostgreSQL, as several hosts
would run them: every web process answers a URL on an address with the same bytes and the
same ETag, and exactly one scheduler renders a change."""

from __future__ import annotations

import re
import time

import requests

from conftest import DEMO_ARTICLES, REDIS_URL
from processes import Service, article_line
from topology import eventually

URLS = ("/feeds/rss.xml", "/feeds/news/turkey/atom.xml", "/feeds/world/feed.json",
        "/feeds/news/roku.json", "/feeds.opml", "/")
HOSTS = ("news.example", "news-mirror.example", "example-news.tv")
CODINGS = ("identity", "gzip", "br")
RENDERED = re.compile(r"incremental refresh: ([1-9]\d*) changes")


def _answers(port: int) -> dict[tuple[str, str, str], tuple[int, str | None, bytes]]:
    """Status, ETag and body of every URL, address and coding on the web process at `port`."""
    answers = {}
    for url in URLS:
        for host in HOSTS:
            for coding in CODINGS:
                response = requests.get(f"http://127.0.0.1:{port}{url}", timeout=5,
                                        headers={"Host": host, "Accept-Encoding": coding},
                                        stream=True)
                answers[url, host, coding] = (response.status_code,
                                              response.headers.get("ETag"), response.raw.read())
    return answers


def test_web_processes_agree_and_one_scheduler_renders_each_change(
        spawn, tmp_path, postgres_url, redis_prefix):
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, database_url=postgres_url,
                             prefix=redis_prefix, refresh_interval=60, leader_lease=3)
    service.import_(DEMO_ARTICLES)
    first, second = service.scheduler(), service.scheduler()
    service.wait_for_refresh()
    ports = [service.web(), service.web()]

    answers = [_answers(port) for port in ports]
    assert answers[0] == answers[1]
    assert {status for status, _, _ in answers[0].values()} == {200}
    assert len({etag for _, etag, _ in answers[0].values()}) == len(answers[0])  # all differ

    logs = {p.pid: lambda p=p: service.spawn.log(p) for p in (first, second)}
    leaders = [pid for pid, log in logs.items() if "takes the lead" in log()]
    assert len(leaders) == 1
    batch = tmp_path / "one.jsonl"
    batch.write_text(article_line("many-1", "Seen on every web process"))
    service.import_(batch)
    for port in ports:
        eventually(lambda port=port: "Seen on every web process" in requests.get(
            f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml", timeout=5).text, 10,
            f"the change on the web process at {port}")
    time.sleep(2)  # the other scheduler had time to render it too, were it to
    rendered = {pid: RENDERED.findall(log()) for pid, log in logs.items()}
    assert rendered == {pid: ["1"] if pid in leaders else [] for pid in logs}
    assert _answers(ports[0]) == _answers(ports[1])
