"""What the per-client rate limit adds to a fast-path cache hit, in CPU time per request.

wrk against the web process (bench/serve.py --rate-limit R) gives the end-to-end figure, but on
a shared two-core machine its run-to-run noise exceeds the effect. This times in-process
instead, best of several rounds: a fast-path cache hit (the site RSS feed, gzip, from the app
`create_app` builds over the demo feeds in an in-process cache), and the rate limit's own cost
(`RateLimit` over an app that does nothing, less that app) for one client and for clients
spread over 150,000 addresses (more than MAX_CLIENTS: the table full, evicting).

    .venv/bin/python bench/ratelimit_cost.py [--requests N] [--rounds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine, print_table
from article_generator import DEFAULT_OUT as DEMO_ARTICLES
from feedsvc.build import FeedBuilder
from feedsvc.cache import MemoryCache
from feedsvc.config import load_settings
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from feedsvc.store import Store
from feedsvc.tokenbucket import MAX_CLIENTS
from feedsvc.web import create_app
from feedsvc.web.ratelimit import RateLimit, TokenBuckets


def _environ(client: str) -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/feeds/rss.xml", "HTTP_HOST": "news.example",
            "HTTP_ACCEPT_ENCODING": "gzip", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": client}


def _best_microseconds(apps: list[Callable], environs: list[dict], rounds: int) -> list[float]:
    """Each app's best time per request; the apps take turns in each round, so a busy spell
    on the machine falls on both."""

    def start_response(status, headers):
        assert status == "200 OK", status

    best = [float("inf")] * len(apps)
    for _ in range(rounds):
        for i, app in enumerate(apps):
            started = time.perf_counter()
            for environ in environs:
                app(dict(environ), start_response)
            best[i] = min(best[i], (time.perf_counter() - started) / len(environs))
    return [seconds * 1e6 for seconds in best]


def _nothing(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("200 OK", [])
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150_000, help="per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        settings = dataclasses.replace(load_settings(),
                                       database_url=f"sqlite:///{Path(tmp) / 's.sqlite3'}")
        store, cache = Store(settings.database_url), MemoryCache()
        Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
        Refresher(FeedBuilder(settings, store, cache)).full()
        one = [_environ("203.0.113.7")] * args.requests
        (hit,) = _best_microseconds([create_app(settings, store, cache).wsgi_app], one,
                                    args.rounds)
        store.close()
    many = [_environ(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
            for n in range(args.requests)]
    rows = [["fast-path cache hit, rate limit off", hit, ""]]
    for label, environs in (("one client", one), (f"{args.requests:,} clients", many)):
        limited = RateLimit(_nothing, TokenBuckets(1e9, 10**9), ())
        off, on = _best_microseconds([_nothing, limited], environs, args.rounds)
        rows.append([f"rate limit's own cost, {label}", on - off,
                     f"{100 * (on - off) / hit:.0f} % of a hit"])
    print(f"machine: {machine()}; best of {args.rounds} rounds of {args.requests:,} requests; "
          f"{MAX_CLIENTS:,} clients kept")
    print_table(["", "µs per request", ""], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
