"""One log format in every long-running process (feedsvc/logs.py): the Procfile's `web`
(granian's main process, its workers and its access log) and `scheduler`, `feedsvc serve`
(gunicorn with the scheduler inside) and gunicorn on config/gunicorn.conf.py. Each is started
for real, asked for a feed, stopped; every line it wrote must have the time, the level, the
logger and the message — or, with FEEDSVC_LOG_FORMAT=json, be one JSON object with those keys."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
import requests

from conftest import DEMO_ARTICLES, REDIS_URL, free_port
from processes import BIN, PROCFILE, ROOT, Service, run_to_exit, wait_until_serving

TEXT_LINE = re.compile(r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
                       r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<logger>[\w.]+): .+")
COMMANDS = {
    "web": PROCFILE["web"],
    "scheduler": PROCFILE["scheduler"],
    "serve": [str(BIN / "feedsvc"), "serve"],
    "gunicorn": [str(BIN / "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.conf.py"),
                 "feedsvc.web:create_app()"],
}
# Loggers each process must have written through: the servers' own, and feedsvc's.
EXPECTED_LOGGERS = {
    "web": {"_granian", "_granian.serve", "granian.access"},
    "scheduler": {"feedsvc.cache.lease", "feedsvc.refresh.refresher"},
    "serve": {"gunicorn.error", "feedsvc.refresh.refresher", "feedsvc.wiring"},
    "gunicorn": {"gunicorn.error", "gunicorn.access"},
}


def _records(log: str, form: str) -> list[dict[str, str]]:
    """Each line of `log` as time, level, logger (and message); fails on a line that is not."""
    records = []
    for line in log.splitlines():
        if form == "text":
            match = TEXT_LINE.fullmatch(line)
            assert match, line
            records.append(match.groupdict())
        else:
            record = json.loads(line)
            assert set(record) == {"time", "level", "logger", "message"}, line
            assert TEXT_LINE.fullmatch(f"{record['time']} {record['level']} "
                                       f"{record['logger']}: {record['message']}"), line
            records.append(record)
    return records


@pytest.mark.parametrize("form", ["text", "json"])
@pytest.mark.parametrize("process", list(COMMANDS))
def test_every_line_of_every_process_has_time_level_and_logger(spawn, tmp_path, redis_prefix,
                                                               process, form):
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}")
    service.import_(DEMO_ARTICLES)
    port = free_port()
    env = {**service.env, "PORT": str(port), "WEB_CONCURRENCY": "1", "ACCESS_LOG": "1",
           "FEEDSVC_LOG_FORMAT": form, "XDG_RUNTIME_DIR": str(tmp_path)}
    started = spawn(COMMANDS[process], env)
    if process == "scheduler":
        service.wait_for_refresh()
    else:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", started)
        assert requests.get(f"http://127.0.0.1:{port}/feeds/rss.xml",
                            headers={"Host": "news.example"}, timeout=10).status_code == 200
    started.terminate()
    started.wait(20)
    records = _records(spawn.log(started), form)
    assert EXPECTED_LOGGERS[process] <= {r["logger"] for r in records}, records
    for record in records:
        datetime.strptime(record["time"], "%Y-%m-%d %H:%M:%S,%f")


def test_an_unknown_log_format_stops_a_process_in_one_line(tmp_path, redis_prefix, spawn):
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}")
    env = {**service.env, "FEEDSVC_LOG_FORMAT": "xml", "PORT": str(free_port())}
    for command in (PROCFILE["web"], PROCFILE["scheduler"], COMMANDS["gunicorn"]):
        done = run_to_exit(command, env)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "FEEDSVC_LOG_FORMAT='xml'" in done.stderr, done.stderr


def test_log_lines_name_documents_by_url_not_by_cache_key(spawn, tmp_path, redis_prefix):
    """With Redis unreachable the web renders from the store and says so, naming the feed as
    its readers do."""
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}")
    service.import_(DEMO_ARTICLES)
    port = free_port()
    web = spawn(PROCFILE["web"], {**service.env, "PORT": str(port), "WEB_CONCURRENCY": "1",
                                  "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    wait_until_serving(f"http://127.0.0.1:{port}/healthz", web)
    assert requests.get(f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml",
                        headers={"Host": "news-mirror.example"}, timeout=10).status_code == 200
    web.terminate()
    web.wait(20)
    log = spawn.log(web)
    assert "https://news-mirror.example/feeds/news/turkey/rss.xml" in log, log
    assert "|" not in log, log
