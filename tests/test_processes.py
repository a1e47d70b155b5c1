"""The real processes, as an operator runs them: `feedsvc demo`, and the Procfile's `web`
(granian) and `scheduler` over PostgreSQL and Redis after `feedsvc import` and
`feedsvc refresh`."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import time
from pathlib import Path

import feedparser
import lxml.html
import pytest
import requests
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from conftest import DEMO_ARTICLES, REDIS_URL, SAMPLE_PAGE, free_port
from feedcheck import assert_valid
from feedsvc.cache import FeedKey, RedisCache
from feedsvc.render.formats import FORMATS
from feedsvc.web.__main__ import WORKER_STOP_SECONDS
from processes import (
    BIN,
    PROCFILE,
    ROOT,
    Service,
    article_line,
    run,
    run_to_exit,
    wait_until_serving,
    write_config,
)

SAMPLE_TITLE = "Putin, Erdogan warn over escalating al-Quds tensions"


def test_demo_serves_the_sample_page_in_the_turkey_feed(spawn, tmp_path):
    port = free_port()
    demo = spawn([str(BIN / "feedsvc"), "demo", "--port", str(port)],
                 env={"XDG_RUNTIME_DIR": str(tmp_path)})  # where gunicorn puts its socket
    url = f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml"
    wait_until_serving(url, demo)
    parsed = feedparser.parse(requests.get(url, timeout=5).content)
    assert not parsed.bozo
    assert SAMPLE_TITLE in [e.title for e in parsed.entries]
    site = feedparser.parse(requests.get(f"http://127.0.0.1:{port}/feeds/atom.xml",
                                         timeout=5).content)
    assert not site.bozo and len(site.entries) == 50
    assert not (tmp_path / "gunicorn.ctl").exists()  # no admin socket
    store = Path(re.search(r"demo store (\S+):", spawn.log(demo)).group(1))
    assert (store / "demo.sqlite3").is_file()
    demo.terminate()
    assert demo.wait(15) == 0
    assert not store.exists()  # the demo's store goes with it


def test_procfile_web_serves_what_import_and_refresh_put_in_postgres_and_redis(
    spawn, tmp_path, postgres_url, redis_prefix
):
    config = write_config(tmp_path, redis_prefix)
    port = free_port()
    env = {"FEEDSVC_CONFIG": str(config), "DATABASE_URL": postgres_url, "REDIS_URL": REDIS_URL,
           "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           "PATH": f"{BIN}:{os.environ['PATH']}"}

    imported = run(["feedsvc", "import", str(DEMO_ARTICLES)], env)
    assert imported.returncode == 0, imported.stderr
    page = run(["feedsvc", "import", str(SAMPLE_PAGE), "--published",
                "2026-11-21T09:00:00+03:30"], env)
    assert page.returncode == 0, page.stderr
    refreshed = run(["feedsvc", "refresh"], env)
    assert refreshed.returncode == 0, refreshed.stderr

    web = spawn(PROCFILE["web"], env)
    url = f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml"
    wait_until_serving(url, web)
    for host in ("news.example", "news-mirror.example", "example-news.tv"):
        response = requests.get(url, headers={"Host": host}, timeout=5)
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, host
        titles = [e.title for e in parsed.entries]
        assert titles[0] == SAMPLE_TITLE, host  # the newest article in the section
        assert parsed.entries[0].link.startswith(f"https://{host}/news/turkey/"), host


def _wait_for_title(cache: RedisCache, title: str, seconds: float) -> float:
    """Seconds until the Turkey feed in the cache carries `title`; fails after `seconds`."""
    started = time.monotonic()
    key = FeedKey("news/turkey", "rss.xml", "https://news.example")
    while time.monotonic() - started < seconds:
        entry = cache.get(key)
        if entry and title in [e.title for e in feedparser.parse(entry.body).entries]:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{title!r} not in the feed after {seconds}s")


def test_schedulers_refresh_on_import_and_fail_over_after_sigkill(spawn, tmp_path, redis_prefix,
                                                                  redis_client):
    """Two schedulers, one leader. An import is in the feed within about a second (pub/sub
    trigger, while the timer is a minute away); SIGKILL the leader mid-flight and the other
    takes over within the lease and catches up."""
    config = write_config(tmp_path, redis_prefix, refresh_interval=60, leader_lease=2)
    env = {"FEEDSVC_CONFIG": str(config), "REDIS_URL": REDIS_URL,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    assert run(["feedsvc", "import", str(DEMO_ARTICLES)], env).returncode == 0
    cache = RedisCache(redis_client, redis_prefix)
    first = spawn(["feedsvc", "scheduler"], env)
    deadline = time.monotonic() + 20
    while cache.get_state("refresh") is None:
        assert time.monotonic() < deadline, "the first scheduler never refreshed"
        time.sleep(0.1)
    second = spawn(["feedsvc", "scheduler"], env)
    time.sleep(1)  # the second one is up and sees the lease taken

    batch = tmp_path / "one.jsonl"
    batch.write_text(article_line("fresh-1", "Fresh one"))
    assert run(["feedsvc", "import", str(batch)], env).returncode == 0
    assert _wait_for_title(cache, "Fresh one", 5) < 3

    os.kill(first.pid, signal.SIGKILL)
    first.wait(5)
    batch.write_text(article_line("fresh-2", "Fresh two"))
    assert run(["feedsvc", "import", str(batch)], env).returncode == 0
    # lease 2 s, renewal checks every 2/3 s: the survivor leads and catches up well within 5 s
    _wait_for_title(cache, "Fresh two", 8)
    assert second.poll() is None


def test_a_scheduler_serves_its_refresh_and_render_metrics(spawn, tmp_path, redis_prefix):
    port = free_port()
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                             metrics_port=port)
    service.import_(DEMO_ARTICLES)
    scheduler = service.scheduler()
    service.wait_for_refresh()
    wait_until_serving(f"http://127.0.0.1:{port}/metrics", scheduler)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {(s.name, s.labels.get("kind", s.labels.get("outcome"))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("feedsvc_refresh_duration_seconds_count", "full")] >= 1
    assert samples[("feedsvc_feed_render_duration_seconds_count", None)] >= 6  # six feeds
    assert samples[("feedsvc_refresh_documents_total", "rendered")] >= 6 * 4 * 3


def test_the_procfile_web_holds_a_client_to_its_rate_limit(spawn, tmp_path, redis_prefix):
    """The limit in front of the production server's fast path (one worker, so one bucket):
    a client gets its burst, then 429 with Retry-After, then tokens back at the rate."""
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                             rate_limit=5, rate_limit_burst=5)
    service.import_(DEMO_ARTICLES)
    assert service.feedsvc("refresh").returncode == 0
    port = service.web(workers=1)
    url = f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml"
    time.sleep(1.1)  # a full bucket again after the start-up polls of /healthz
    with requests.Session() as session:
        answers = [session.get(url, timeout=5) for _ in range(20)]
        codes = [a.status_code for a in answers]
        assert codes[:5] == [200] * 5
        assert set(codes) == {200, 429} and codes.count(429) >= 13, codes
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["Retry-After"] == "1"
        time.sleep(0.3)  # one token at 5 a second
        assert session.get(url, timeout=5).status_code == 200


def test_the_web_stops_on_sigterm_even_while_a_worker_starts(spawn, tmp_path, redis_prefix):
    """SIGTERM while the worker is still building the app: granian's worker ignores it then
    (see feedsvc/web/__main__.py) and goes on to serve, so without a limit the server would
    wait for it forever and, once killed by the platform, leave it holding the port. With the
    limit the server kills it and exits; nothing is left."""
    port = free_port()
    env = {"FEEDSVC_CONFIG": str(write_config(tmp_path, redis_prefix)), "REDIS_URL": REDIS_URL,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}", "HOST": "127.0.0.1",
           "PORT": str(port), "WEB_CONCURRENCY": "1", "PYTHONPATH": str(ROOT / "tests"),
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    web = spawn([*PROCFILE["web"], "slow_start:create_app"], env)
    deadline = time.monotonic() + 20
    while not (found := re.search(r"Spawning worker-1 with PID: (\d+)", spawn.log(web))):
        assert time.monotonic() < deadline and web.poll() is None, spawn.log(web)
        time.sleep(0.05)
    worker = int(found.group(1))
    try:
        web.send_signal(signal.SIGTERM)  # while the factory sleeps
        assert web.wait(WORKER_STOP_SECONDS + 10) == 0
        assert "refused to gracefully stop" in spawn.log(web)  # it did ignore the signal
        with pytest.raises(ProcessLookupError):
            os.kill(worker, 0)
    finally:  # should this fail, no worker is left serving
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


def _wait_for_log(spawn, process, pattern: str, seconds: float = 15) -> re.Match:
    deadline = time.monotonic() + seconds
    while not (found := re.search(pattern, spawn.log(process))):
        assert time.monotonic() < deadline, f"no {pattern!r} in:\n{spawn.log(process)}"
        time.sleep(0.1)
    return found


def test_schedulers_say_who_leads_who_stands_by_and_when_the_lead_moves(spawn, tmp_path,
                                                                       redis_prefix,
                                                                       redis_client):
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
                             leader_lease=3)
    first = service.scheduler()
    leader = _wait_for_log(spawn, first, r"INFO \S+: scheduler (\S+) takes the lead").group(1)
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{first.pid}:\w+", leader), leader
    second = service.scheduler()
    standby = _wait_for_log(spawn, second,
                            rf"INFO \S+: scheduler (\S+) stands by: {re.escape(leader)} leads")
    assert standby.group(1) != leader
    first.terminate()
    assert first.wait(15) == 0
    _wait_for_log(spawn, first, rf"INFO \S+: scheduler {re.escape(leader)} gives up the lead")
    _wait_for_log(spawn, second,
                  rf"INFO \S+: scheduler {re.escape(standby.group(1))} takes the lead", 10)
    redis_client.set(f"{redis_prefix}leader", "elsewhere:1:intruder", px=60_000)  # taken away
    _wait_for_log(spawn, second, rf"WARNING \S+: scheduler {re.escape(standby.group(1))} lost "
                                 "the lead: elsewhere:1:intruder leads", 5)
    second.terminate()  # before the prefix's keys are deleted: it would take the lease again
    assert second.wait(15) == 0


def test_the_demo_address_is_one_of_the_site_links_can_be_followed_from_the_index(spawn,
                                                                                  tmp_path):
    """From `/` of `feedsvc demo` to every feed and the OPML, over the demo's own address; the
    feeds' item links are on that address too (the site's links rewritten as for a mirror)."""
    port = free_port()
    local = f"http://127.0.0.1:{port}"
    demo = spawn([str(BIN / "feedsvc"), "demo", "--port", str(port)],
                 env={"XDG_RUNTIME_DIR": str(tmp_path)})
    wait_until_serving(f"{local}/feeds/rss.xml", demo)
    index = lxml.html.fromstring(requests.get(f"{local}/", timeout=5).content)
    links = {link for link in index.xpath("//a/@href | //link[@rel='alternate']/@href")}
    feeds = {link for link in links if link.rsplit("/", 1)[-1] in FORMATS}
    assert f"{local}/feeds.opml" in links and len(feeds) >= 4 * 6, sorted(links)
    assert {link for link in feeds if not link.startswith(f"{local}/feeds/")} == set()
    opml = etree.fromstring(requests.get(f"{local}/feeds.opml", timeout=5).content)
    assert {url for url in opml.xpath("//outline/@xmlUrl") if not url.startswith(local)} == set()
    items = 0
    for url in sorted(feeds):
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 200, url
        filename = url.rsplit("/", 1)[-1]
        assert_valid(filename, answer.content, url)
        if filename in ("rss.xml", "atom.xml"):
            entries = feedparser.parse(answer.content).entries
            targets = [entry.link for entry in entries]
        elif filename == "feed.json":
            targets = [item["url"] for item in answer.json()["items"]]
        else:
            continue  # Roku items carry video URLs, not article pages
        items += len(targets)
        assert {link for link in targets if not link.startswith(f"{local}/")} == set(), url
    assert items >= 200


@pytest.fixture
def web_env(tmp_path, redis_prefix) -> dict[str, str]:
    """What the Procfile `web` needs to start: a config of the test's own, its store and Redis."""
    return {"FEEDSVC_CONFIG": str(write_config(tmp_path, redis_prefix)), "REDIS_URL": REDIS_URL,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}", "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}


def _one_line(done) -> str:
    """The one line a failed start prints on stderr, and nothing else anywhere."""
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stderr.strip()


@pytest.mark.parametrize("args", [["--bogus"], ["a:b", "c:d"], ["--port"]])
def test_the_web_refuses_bad_arguments_in_one_line_before_any_worker(web_env, args):
    line = _one_line(run_to_exit([*PROCFILE["web"], *args], web_env))
    assert line.startswith("python -m feedsvc.web: ") and "--help" in line, line


def test_the_web_prints_its_usage_for_help_and_starts_nothing(web_env):
    done = run_to_exit([*PROCFILE["web"], "--help"], web_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: python -m feedsvc.web") and "PORT" in done.stdout
    assert done.stderr == ""


def test_a_bad_config_stops_the_web_in_the_line_feedsvc_serve_prints(web_env, tmp_path):
    config = Path(web_env["FEEDSVC_CONFIG"])
    config.write_text(config.read_text().replace('origin = "https://news.example"',
                                                 'origin = "ftp://news.example"'))
    line = _one_line(run_to_exit(PROCFILE["web"], web_env))
    assert line == _one_line(run_to_exit([str(BIN / "feedsvc"), "serve"], web_env))
    assert "site.origin" in line and str(config) in line


def test_a_port_in_use_stops_the_web_and_serve_in_one_line(web_env):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**web_env, "PORT": str(port)}
        for command in (PROCFILE["web"], [str(BIN / "feedsvc"), "serve"]):
            line = _one_line(run_to_exit(command, env))
            assert f"127.0.0.1:{port}" in line and "in use" in line, line


def test_a_second_web_on_the_port_of_another_is_refused_not_sharing_it(spawn, web_env):
    """granian binds with SO_REUSEPORT: without a check a second server silently shares the
    port, each answering some of the requests."""
    port = free_port()
    env = {**web_env, "PORT": str(port)}
    first = spawn(PROCFILE["web"], env)
    wait_until_serving(f"http://127.0.0.1:{port}/healthz", first)
    line = _one_line(run_to_exit(PROCFILE["web"], env))
    assert f"127.0.0.1:{port}" in line and "in use" in line, line
    assert first.poll() is None


def test_the_web_listens_where_the_config_says_unless_host_and_port_say_otherwise(
        spawn, tmp_path, redis_prefix, web_env):
    port = free_port()
    env = {**web_env, "FEEDSVC_CONFIG": str(write_config(tmp_path, redis_prefix, port=port))}
    del env["HOST"]  # web.host in the config: 127.0.0.1
    web = spawn(PROCFILE["web"], env)
    wait_until_serving(f"http://127.0.0.1:{port}/healthz", web)
    other = free_port()
    overridden = spawn(PROCFILE["web"], {**env, "HOST": "127.0.0.2", "PORT": str(other)})
    wait_until_serving(f"http://127.0.0.2:{other}/healthz", overridden)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{other}/healthz", timeout=2)
