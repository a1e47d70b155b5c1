"""Freshness: seconds from an article's commit in the store to its appearance in the served feed.

Runs the production processes — `feedsvc scheduler` and the Procfile's gunicorn `web` — against
Redis and a store (a fresh SQLite file with the demo data, or `--database-url` naming a store
already filled, e.g. with `bench/store_queries.py --keep`), with the refresh timer a minute
away, so what is measured is the import trigger (Redis pub/sub) -> incremental refresh ->
cache -> HTTP path. Each round imports one article in-process (as `feedsvc import` does) and
polls the feed over HTTP every 10 ms until the article is there.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests

from _common import Budget, machine, median_p95_ms, print_table
from feedsvc.cache import RedisCache
from feedsvc.config import load_settings
from feedsvc.ingest.document import parse_article
from feedsvc.refresh.trigger import announce
from feedsvc.store import Store

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEMO = ROOT / "feedsvc" / "demo" / "articles.jsonl"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(workdir: Path, prefix: str) -> Path:
    text = (ROOT / "config" / "feedsvc.toml").read_text()
    text = text.replace('key_prefix = "feedsvc:"', f'key_prefix = "{prefix}"')
    path = workdir / "feedsvc.toml"
    path.write_text(text)
    return path


def _wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up in {seconds}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", help="a store already filled (default: a fresh SQLite "
                                               "file with the demo articles)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--quick", action="store_true", help="5 rounds (CI)")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else args.rounds
    prefix = f"bench-fresh-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis_url)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="freshness-")))
        config = _config(workdir, prefix)
        database_url = args.database_url or f"sqlite:///{workdir / 'store.sqlite3'}"
        port = _port()
        env = {**os.environ, "FEEDSVC_CONFIG": str(config), "DATABASE_URL": database_url,
               "REDIS_URL": args.redis_url, "PORT": str(port), "HOST": "127.0.0.1",
               "PATH": f"{BIN}:{os.environ['PATH']}"}
        if not args.database_url:
            subprocess.run(["feedsvc", "import", str(DEMO)], env=env, check=True,
                           capture_output=True)
        settings = load_settings(config, environ=env)
        store = Store(settings.database_url)
        procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text()
                        .splitlines())
        for args_ in (shlex.split(procfile["scheduler"]), shlex.split(procfile["web"])):
            log = open(workdir / f"{args_[0]}.log", "wb")  # noqa: SIM115 (closed with the stack)
            stack.enter_context(log)
            process = subprocess.Popen(args_, cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            stack.callback(process.wait, 10)
            stack.callback(process.terminate)
        stack.callback(lambda: client.delete(*client.keys(prefix + "*") or [prefix]))
        feed = f"http://127.0.0.1:{port}/feeds/news/turkey/rss.xml"
        _wait_http(feed)
        cache = RedisCache(client, prefix)
        while cache.get_state("refresh") is None:  # the scheduler's first full refresh
            time.sleep(0.2)
        print(f"store: {store.count():,} articles ({database_url.split('?')[0]}); {machine()}")

        latencies = []
        for n in range(rounds):
            title = f"Freshness probe {uuid.uuid4().hex[:10]}"
            article = parse_article({
                "id": f"fresh-{uuid.uuid4().hex}", "url": f"/news/turkey/probe-{n}",
                "section": "News/Turkey", "title": title,
                "published": datetime.now(UTC).isoformat()},
                origin=settings.origin, timezone=settings.timezone)
            store.upsert([article])  # committed when this returns
            committed = time.perf_counter()
            announce(client, prefix)
            while title not in requests.get(feed, timeout=5).text:
                if time.perf_counter() - committed > 30:
                    raise SystemExit(f"round {n}: not in the feed after 30 s")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - committed)
            time.sleep(0.3)  # let the scheduler settle, as imports a few seconds apart would

        median, p95 = median_p95_ms(latencies)
        print_table(["commit -> served feed", "rounds", "median ms", "p95 ms", "max ms"],
                    [["import trigger, incremental refresh", rounds, median, p95,
                      max(latencies) * 1e3]])
        budget = Budget()
        budget.check("median freshness", median / 1e3, 2.0, "s")
        return budget.exit_code()


if __name__ == "__main__":
    sys.exit(main())
