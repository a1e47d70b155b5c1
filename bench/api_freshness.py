"""Freshness through the ingest API: seconds from `PUT /api/articles/<id>` sent to the article
in the served feed, against `feedsvc import` of one article in the same run.

Runs the production processes, the Procfile's `scheduler` and `web` (granian; the API on, one
token configured), against Redis and a store of N generated articles in 500 sections
(bench/rebuild.py's regions of desks: 1,000,000 by default; `--reuse PATH` keeps the SQLite
file, `--database-url` takes PostgreSQL), with the refresh timer a minute away. Two streams of
probe articles go to one desk, each at random intervals (bench/freshness.py's ProbeStream,
which also polls the desk's feed over HTTP every 10 ms and notes when each probe appears):

- PUTs over HTTP, as a CMS sends them: the latency counts from the moment the request is sent,
  so it includes the API's validation, write and announcement;
- `feedsvc import FILE` of a one-line file each, as a cron job or a CMS hook would run it: the
  latency counts from the command's start (the interpreter's start-up included);
- and, as bench/freshness.py times it, an upsert in this process then its announcement, the
  latency counting from the commit: what the refresh and serving alone take in this run, on
  this machine's load, beneath the API's own time (its answer time is a row too).

    .venv/bin/python bench/api_freshness.py [--count N] [--reuse PATH | --database-url URL]
        [--rounds 200] [--cli-rounds 30] [--interval 1] [--quick]

Exits 1 when the API's p99 is over BUDGET_MS (QUICK_BUDGET_MS with --quick: a small store on
a shared CI machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import redis
import requests

from _common import (
    BIN,
    Budget,
    add_store_arguments,
    backend,
    delete_keys,
    fill_store,
    free_port,
    machine,
    median_p95_ms,
    open_store,
    percentile_ms,
    print_table,
    service_env,
    start_procfile,
    store_url,
    wait_until_serving,
    write_config,
)
from feedsvc.cache import RedisCache
from feedsvc.config import load_settings
from feedsvc.ingest.tokens import hash_token
from feedsvc.model import section_slug, split_section
from freshness import ProbeStream, store_import
from rebuild import sections

DEFAULT_COUNT, QUICK_COUNT = 1_000_000, 2_000
SECTIONS, QUICK_SECTIONS = 500, 20
BUDGET_MS = 200.0         # the target, at 1,000,000 articles
QUICK_BUDGET_MS = 2_000.0  # as bench/freshness.py --quick: CI machines are shared


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    count = QUICK_COUNT if args.quick else args.count
    desks = sections(QUICK_SECTIONS if args.quick else SECTIONS)
    rounds, cli_rounds = (10, 3) if args.quick else (args.rounds, args.cli_rounds)
    interval = 0.2 if args.quick else args.interval
    prefix = f"bench-apifresh-{uuid.uuid4().hex[:8]}:"
    token = secrets.token_urlsafe(32)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="api-fresh-")))
        url = stack.enter_context(store_url(args, "api-fresh.sqlite3"))
        store = stack.enter_context(open_store(url))
        url = store.engine.url.render_as_string(hide_password=False)  # with its own schema
        config = write_config(workdir, prefix, (
            "tokens = []", f'tokens = [{{name = "bench", hash = "{hash_token(token)}"}}]'))
        settings = dataclasses.replace(load_settings(config, environ={}), database_url=url)
        # A kept store holds the probes of earlier runs too (a few hundred more articles).
        if store.count() < count and (filled := fill_store(store, count, settings, args.seed,
                                                           desks)) is not None:
            print(f"filled {count:,} articles in {filled.seconds:,.0f} s")
            # The fill's changes are within the change overlap for that long: until then each
            # announced change makes a full refresh (too many changes to pick), not the steady
            # state measured here.
            settled = time.monotonic() + settings.change_overlap
        else:
            settled = time.monotonic()
        port = free_port()
        env = service_env(config, url, args.redis_url, PORT=str(port))
        # Registered first so it runs last: after the processes, which could write again, stop.
        stack.callback(delete_keys, args.redis_url, prefix)
        processes = start_procfile(stack, ("scheduler", "web"), env, workdir)
        section = desks[0]
        web = f"http://127.0.0.1:{port}"
        feed = f"{web}/feeds/{section_slug(split_section(section))}/rss.xml"
        wait_until_serving(feed, processes["web"], workdir / "web.log", seconds=300)
        cache = RedisCache(redis.Redis.from_url(args.redis_url), prefix)
        while cache.get_state("refresh") is None:  # the scheduler's first full refresh
            if processes["scheduler"].poll() is not None:
                sys.exit(f"the scheduler exited:\n{(workdir / 'scheduler.log').read_text()}")
            time.sleep(0.5)
        time.sleep(max(0.0, settled - time.monotonic()))
        print(f"store: {store.count():,} articles, {backend(store)}; {machine()}")

        answered: list[float] = []  # the PUTs' own times: validation, write, announcement
        api = ProbeStream(_put(web, token, answered), section).run(feed, rounds, interval)
        cli = ProbeStream(_import(env, workdir), section).run(feed, cli_rounds, interval)
        direct = ProbeStream(store_import(store, settings, cache.client, prefix),
                             section).run(feed, cli_rounds, interval)

    rows = []
    for label, latencies in (("PUT /api/articles/<id>", api),
                             ("feedsvc import (one article)", cli),
                             ("(in-process commit -> served, as freshness.py)", direct),
                             ("(the PUT answered: sent -> 201)", answered)):
        median, p95 = median_p95_ms(latencies)
        rows.append([label, len(latencies), median, p95, percentile_ms(latencies, 0.99),
                     max(latencies) * 1e3])
    print_table(["sent -> served feed", "articles", "median ms", "p95 ms", "p99 ms", "max ms"],
                rows)
    print(f"API / import: median {rows[0][2] / rows[1][2]:.2f}, p99 {rows[0][4] / rows[1][4]:.2f}")
    budget = Budget()
    budget.check("API p99 freshness", rows[0][4], QUICK_BUDGET_MS if args.quick else BUDGET_MS,
                 "ms")
    return budget.exit_code()


def _put(web: str, token: str, answered: list[float]):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def send(doc: dict[str, str]) -> float:
        sent = time.perf_counter()
        response = session.put(f"{web}/api/articles/{quote(doc['id'], safe='')}", json=doc,
                               timeout=30)
        answered.append(time.perf_counter() - sent)
        if response.status_code != 201:
            sys.exit(f"PUT answered {response.status_code}: {response.text}")
        return sent

    return send


def _import(env: dict[str, str], workdir: Path):
    def send(doc: dict[str, str]) -> float:
        path = workdir / f"{doc['id']}.jsonl"
        path.write_text(json.dumps(doc) + "\n")
        started = time.perf_counter()
        subprocess.run([str(BIN / "feedsvc"), "import", str(path)], env=env, check=True,
                       capture_output=True)
        return started

    return send


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"articles in the store (default {DEFAULT_COUNT:,})")
    add_store_arguments(parser)
    parser.add_argument("--rounds", type=int, default=200, help="PUTs (default 200)")
    parser.add_argument("--cli-rounds", type=int, default=30,
                        help="`feedsvc import` runs (default 30)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="mean seconds between probes (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_COUNT:,} articles, 10 PUTs and 3 imports (CI)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
