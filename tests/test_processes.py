"""The real processes, as an operator runs them: `feedsvc demo`, and the Procfile's `web`
(gunicorn with its production config) over PostgreSQL and Redis after `feedsvc import` and
`feedsvc refresh`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
import requests

from conftest import DEMO_ARTICLES, REDIS_URL, ROOT, SAMPLE_PAGE, free_port

BIN = Path(sys.executable).parent
SAMPLE_TITLE = "Putin, Erdogan warn over escalating al-Quds tensions"


def _wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds}s")


@pytest.fixture
def spawn() -> Iterator:
    processes: list[subprocess.Popen] = []

    def start(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        process = subprocess.Popen(args, cwd=cwd, env={**os.environ, **env},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_demo_serves_the_sample_page_in_the_turkey_feed(spawn, tmp_path):
    port = free_port()
    demo = spawn([str(BIN / "feedsvc"), "demo", "--port", str(port)], env={})
    url = f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml"
    _wait_until_serving(url, demo)
    parsed = feedparser.parse(requests.get(url, timeout=5).content)
    assert not parsed.bozo
    assert SAMPLE_TITLE in [e.title for e in parsed.entries]
    site = feedparser.parse(requests.get(f"http://127.0.0.1:{port}/feeds/atom.xml",
                                         timeout=5).content)
    assert not site.bozo and len(site.entries) == 50


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


def test_procfile_web_serves_what_import_and_refresh_put_in_postgres_and_redis(
    spawn, tmp_path, postgres_url, redis_prefix
):
    config = tmp_path / "feedsvc.toml"
    config.write_text((ROOT / "config" / "feedsvc.toml").read_text().replace(
        'key_prefix = "feedsvc:"', f'key_prefix = "{redis_prefix}"'))
    port = free_port()
    env = {"FEEDSVC_CONFIG": str(config), "DATABASE_URL": postgres_url, "REDIS_URL": REDIS_URL,
           "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           "PATH": f"{BIN}:{os.environ['PATH']}"}

    imported = _run(["feedsvc", "import", str(DEMO_ARTICLES)], env)
    assert imported.returncode == 0, imported.stderr
    page = _run(["feedsvc", "import", str(SAMPLE_PAGE), "--published",
                 "2026-11-21T09:00:00+03:30"], env)
    assert page.returncode == 0, page.stderr
    refreshed = _run(["feedsvc", "refresh"], env)
    assert refreshed.returncode == 0, refreshed.stderr

    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())
    web = spawn(shlex.split(procfile["web"]), env)
    url = f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml"
    _wait_until_serving(url, web)
    for host in ("news.example", "news-mirror.example", "example-news.tv"):
        response = requests.get(url, headers={"Host": host}, timeout=5)
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, host
        titles = [e.title for e in parsed.entries]
        assert titles[0] == SAMPLE_TITLE, host  # the newest article in the section
        assert parsed.entries[0].link.startswith(f"https://{host}/news/turkey/"), host
