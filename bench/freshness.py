"""Freshness: seconds from an article's commit in the store to its appearance in the served feed.

Runs the production processes — the Procfile's `scheduler` and `web` — against Redis and a store
(a fresh SQLite file with the demo data, or `--database-url` naming a store already filled, e.g.
by `bench/rebuild.py --reuse PATH`: 1,000,000 articles in 500 sections), with the refresh timer
a minute away, so what is measured is the import trigger (Redis pub/sub) -> incremental refresh
-> cache -> HTTP path. A stream of imports — one article at a time, as `feedsvc import` commits
and announces it, at random intervals (exponential, `--interval` seconds on average), whether
or not the previous one is in the feed yet — while a reader polls the section's feed over HTTP
every 10 ms and notes when each article first appears.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests

from _common import (
    ROOT,
    Budget,
    cpu_seconds,
    free_port,
    machine,
    median_p95_ms,
    percentile_ms,
    print_table,
    service_env,
    start_procfile,
    wait_until_serving,
    write_config,
)
from feedsvc.cache import RedisCache
from feedsvc.cache.announce import announce
from feedsvc.config import load_settings
from feedsvc.ingest.document import parse_article
from feedsvc.model import section_slug, split_section
from feedsvc.store import Store

DEMO = ROOT / "feedsvc" / "demo" / "articles.jsonl"
P99_BUDGET_SECONDS = 2.0  # the target, commit to served, wall clock
# --quick (CI) judges the scheduler's CPU time per import instead (the incremental refresh the
# import's announcement triggers), which a busy neighbour delays but does not add to; the
# web's is shown, most of it the poller's requests. 119-139 ms measured on the demo store (the
# scheduler idle: under 1 %; when busy, refreshes take several imports at once and it is
# less); about three times that.
QUICK_CPU_BUDGET_MS = 400.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="articles imported")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="mean seconds between imports (default 1)")
    parser.add_argument("--section", default="News/Turkey",
                        help="the section the probes are filed in (default News/Turkey)")
    parser.add_argument("--database-url", help="a store already filled (default: a fresh SQLite "
                                               "file with the demo articles)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--quick", action="store_true", help="10 imports 0.2 s apart (CI)")
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else args.rounds
    prefix = f"bench-fresh-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis_url)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="freshness-")))
        config = write_config(workdir, prefix)
        database_url = args.database_url or f"sqlite:///{workdir / 'store.sqlite3'}"
        port = free_port()
        env = service_env(config, database_url, args.redis_url, PORT=str(port))
        if not args.database_url:
            subprocess.run(["feedsvc", "import", str(DEMO)], env=env, check=True,
                           capture_output=True)
        settings = load_settings(config, environ=env)
        store = Store(settings.database_url)
        # Registered first so it runs last: after the processes, which could write again, stop.
        stack.callback(lambda: client.delete(*client.keys(prefix + "*") or [prefix]))
        processes = start_procfile(stack, ("scheduler", "web"), env, workdir)
        feed = f"http://127.0.0.1:{port}/feeds/{section_slug(split_section(args.section))}/rss.xml"
        wait_until_serving(feed, processes["web"], workdir / "web.log")
        cache = RedisCache(client, prefix)
        while cache.get_state("refresh") is None:  # the scheduler's first full refresh
            time.sleep(0.2)
        print(f"store: {store.count():,} articles ({database_url.split('?')[0]}); {machine()}")

        probes = ProbeStream(store_import(store, settings, client, prefix), args.section,
                             {name: p.pid for name, p in processes.items()})
        latencies = probes.run(feed, rounds, 0.2 if args.quick else args.interval)
        median, p95 = median_p95_ms(latencies)
        p99 = percentile_ms(latencies, 0.99)
        print_table(["commit -> served feed", "imports", "median ms", "p95 ms", "p99 ms",
                     "max ms", "scheduler CPU ms per import", "web CPU ms (polls included)"],
                    [["import trigger, incremental refresh", rounds, median, p95, p99,
                      max(latencies) * 1e3, probes.cpu["scheduler"] * 1e3,
                      probes.cpu["web"] * 1e3]])
        budget = Budget()
        budget.check("p99 freshness", p99 / 1e3, P99_BUDGET_SECONDS, "s", judge=not args.quick)
        if args.quick:
            budget.check("scheduler CPU time per import", probes.cpu["scheduler"] * 1e3,
                         QUICK_CPU_BUDGET_MS, "ms")
        return budget.exit_code()


class ProbeStream:
    """Sends probe articles at random intervals (exponential, `interval` seconds on average),
    whether or not the previous one is in the feed yet, while polling the feed every 10 ms, and
    times each one's way into it. `send(document)` delivers one article document (section
    `section`, a unique title) and returns the perf_counter time its latency counts from.
    `service`: the service's processes by name, whose CPU seconds per probe `run` notes in
    `cpu`."""

    def __init__(self, send: Callable[[dict[str, str]], float], section: str,
                 service: Mapping[str, int]):
        self.send = send
        self.section = section
        self.service = service
        self.committed: dict[str, float] = {}  # title -> the time send() returned
        self.lock = threading.Lock()
        self.cpu: dict[str, float] = {}

    def run(self, feed: str, count: int, interval: float) -> list[float]:
        started = {name: cpu_seconds(pid) for name, pid in self.service.items()}
        latencies = self._run(feed, count, interval)
        self.cpu = {name: (cpu_seconds(pid) - started[name]) / count
                    for name, pid in self.service.items()}
        return latencies

    def _run(self, feed: str, count: int, interval: float) -> list[float]:
        sender = threading.Thread(target=self._send, args=(count, interval), daemon=True)
        sender.start()
        seen: dict[str, float] = {}
        deadline = None  # a minute after the last probe was sent
        while len(seen) < count:
            if deadline is None and not sender.is_alive():
                deadline = time.monotonic() + 60
            if deadline is not None and time.monotonic() > deadline:
                raise SystemExit(f"{count - len(seen)} probe articles never reached the feed")
            text = requests.get(feed, timeout=5).text
            now = time.perf_counter()
            with self.lock:
                pending = [t for t in self.committed if t not in seen]
            seen.update((t, now) for t in pending if t in text)
            time.sleep(0.01)
        sender.join()
        return [seen[t] - self.committed[t] for t in seen]

    def _send(self, count: int, interval: float) -> None:
        rng = random.Random(1)
        for _ in range(count):
            key = uuid.uuid4().hex[:12]
            title = f"Freshness probe {key}"
            since = self.send({"id": f"fresh-{key}", "url": f"/probes/{key}",
                               "section": self.section, "title": title,
                               "published": datetime.now(UTC).isoformat()})
            with self.lock:
                self.committed[title] = since
            time.sleep(rng.expovariate(1 / interval))


def store_import(store: Store, settings, client: redis.Redis, prefix: str):
    """`send` for ProbeStream: one article upserted, then announced, as `feedsvc import` does;
    latency counts from the commit."""
    def send(doc: dict[str, str]) -> float:
        store.upsert([parse_article(doc, origin=settings.origin, timezone=settings.timezone)])
        committed = time.perf_counter()  # upsert commits before it returns
        announce(client, prefix)
        return committed

    return send


if __name__ == "__main__":
    sys.exit(main())
