"""Rebuilds and incremental refreshes at scale: 1,000,000 articles over 500 sections.

Fills a store with N generated articles filed in S sections (regions of desks: a desk's feed, its
region's feed that includes it, and the site feed), then times the scheduler's work against
Redis under a key prefix of its own (deleted at the end), with the demo configuration's three
addresses and four formats:

- a full rebuild into an empty cache: every feed in every format on every address rendered,
  compressed and written (what a first start or a flushed Redis costs);
- the same again with nothing changed: rendered and compared by ETag, nothing compressed or
  written (the periodic drift repair);
- an incremental refresh after 1, 100 and 10,000 changed articles (corrections re-sent with a
  new `updated`, the newest of random desks: articles in feeds); the one-article case is
  repeated for a median and a 95th percentile.

    .venv/bin/python bench/rebuild.py [--count N --sections S | --quick]
        [--reuse PATH | --database-url URL] [--repeat R]

Filling 1,000,000 articles takes minutes: --reuse keeps the SQLite file for the next run.
Exits 1 when the median one-article incremental refresh is over its budget: wall clock, or
with --quick (CI) this process's CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import redis

from _common import (
    Budget,
    Timer,
    add_store_arguments,
    backend,
    fill_store,
    machine,
    median_p95_ms,
    open_store,
    peak_rss_mb,
    print_table,
    store_url,
    vacuum_analyze,
)
from feedsvc.build import FeedBuilder
from feedsvc.cache import RedisCache
from feedsvc.config import load_settings
from feedsvc.model import section_slug, split_section
from feedsvc.refresh import Refresher
from feedsvc.refresh.refresher import RefreshReport
from feedsvc.store import Store

DEFAULT_COUNT, DEFAULT_SECTIONS = 1_000_000, 500
QUICK_COUNT, QUICK_SECTIONS = 10_000, 50
DESKS_PER_REGION = 19  # 500 sections = 25 regions + 475 desks
CHANGES = (1, 100, 10_000)
REPEAT = 20
BUDGET_MS = 250.0  # the target for one changed article, wall clock
# --quick (CI) judges this process's CPU time instead, which a busy neighbour does not move
# (the compression threads' included, so it can exceed the wall time): 150-230 ms measured,
# quiet or beside two busy loops; about twice the highest.
QUICK_CPU_BUDGET_MS = 500.0
QUICK_OVERLAP = 2  # seconds of scheduler.change_overlap in --quick runs, so the wait is short
REDIS_URL = "redis://127.0.0.1:6379/0"


def sections(total: int) -> list[str]:
    """`total` sections as regions of desks; articles are filed in the desks."""
    regions = max(1, round(total / (DESKS_PER_REGION + 1)))
    desks = max(1, total // regions - 1)
    return [f"Region {r:02d}/Desk {d:02d}" for r in range(1, regions + 1)
            for d in range(1, desks + 1)]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    count = QUICK_COUNT if args.quick else args.count
    section_count = QUICK_SECTIONS if args.quick else args.sections
    desks = sections(section_count)
    prefix = f"feedsvc-bench:{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(args.redis_url)
    budget = Budget()
    with (store_url(args, "rebuild.sqlite3") as url, open_store(url) as store,
          _deleted(client, prefix)):
        print(f"store: {backend(store)}")
        settings = dataclasses.replace(load_settings(), database_url=url, cache_prefix=prefix)
        if args.quick:
            settings = dataclasses.replace(settings, change_overlap=QUICK_OVERLAP)
        filled = fill_store(store, count, settings, args.seed, desks)
        filled_at = time.monotonic()
        if store.engine.dialect.name == "postgresql" and filled is not None:
            vacuum_analyze(store)
        if filled is not None:
            print(f"filled in {filled.seconds:,.0f} s ({count / filled.seconds:,.0f} articles/s)")
        refresher = Refresher(FeedBuilder(settings, store, RedisCache(client, prefix)))
        rows = [
            _row("full rebuild, empty cache", *_timed(lambda: refresher.full(progress=True))),
        ]
        # --quick (CI) times only what it judges, the one-article refresh, and what it needs
        if not args.quick:
            rows.append(_row("full rebuild, nothing changed", *_timed(refresher.full)))
        # Refreshes within two overlaps of a bulk import re-read its rows (late commits); the
        # fill just made is one: the figures below are for a store at rest, so wait that out.
        wait = filled_at + 2 * settings.change_overlap + 0.5 - time.monotonic()
        if filled is not None and wait > 0:
            print(f"waiting {wait:.0f} s: the fill is within the change overlap window")
            time.sleep(wait)
        rows.append(_row("incremental, nothing changed", *_timed(refresher.incremental)))
        rng = random.Random(args.seed)
        singles = [_timed(lambda: _change(store, rng, desks, 1) or refresher.incremental())
                   for _ in range(args.repeat)]
        median, p95 = median_p95_ms([timer.seconds for _, timer in singles])
        cpu_median = statistics.median(timer.cpu for _, timer in singles) * 1e3
        report, timer = singles[len(singles) // 2]
        rows.append(_row(f"incremental, 1 changed article (median of {args.repeat})",
                         report, timer, median / 1e3, p95))
        for changes in () if args.quick else CHANGES[1:]:
            _change(store, rng, desks, changes)
            rows.append(_row(f"incremental, {changes:,} changed articles",
                             *_timed(refresher.incremental)))
        budget.check("one changed article, incremental refresh", median, BUDGET_MS,
                     "ms median", judge=not args.quick)
        if args.quick:
            budget.check("one changed article, incremental refresh, CPU time", cpu_median,
                         QUICK_CPU_BUDGET_MS, "ms median")

    print(f"\n{count:,} articles in {len(desks):,} desks of "
          f"{len({d.split('/')[0] for d in desks})} regions; "
          f"{len(settings.addresses)} addresses x 4 formats per feed; machine: {machine()}; "
          f"peak RSS {peak_rss_mb():,.0f} MB")
    print("seconds = wall clock of the refresh call (rendered, compressed, published); "
          "cpu = this process's CPU time")
    print_table(["refresh", "kind", "changes", "feeds", "documents", "changed", "seconds",
                 "p95 ms", "cpu s", "documents/s"], rows)
    return budget.exit_code()


def _timed(call) -> tuple[RefreshReport, Timer]:
    with Timer() as timer:
        report = call()
    return report, timer


def _row(label: str, report: RefreshReport, timer: Timer, seconds: float | None = None,
         p95_ms: float | str = "") -> list[object]:
    seconds = timer.seconds if seconds is None else seconds
    return [label, report.kind, report.changes, report.feeds, report.documents,
            len(report.changed_urls), round(seconds, 3), p95_ms, round(timer.cpu, 3),
            round(report.documents / seconds)]


def _change(store: Store, rng: random.Random, desks: list[str], count: int) -> None:
    """Re-send `count` articles with a new `updated`, spread over the desks: the newest of
    `count` random desks, or the newest few of every desk when there are more changes than
    desks (corrections land where the recent articles are)."""
    per_desk = -(-count // len(desks))
    chosen = rng.sample(desks, min(count, len(desks)))
    articles = [a for desk in chosen
                for a in store.newest(section_slug(split_section(desk)), per_desk)][:count]
    now = datetime.now(UTC)
    store.upsert([dataclasses.replace(a, updated=now) for a in articles])


@contextlib.contextmanager
def _deleted(client: redis.Redis, prefix: str) -> Iterator[None]:
    """Delete this run's keys (and only those) afterwards."""
    try:
        yield
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"articles in the store (default {DEFAULT_COUNT:,})")
    parser.add_argument("--sections", type=int, default=DEFAULT_SECTIONS,
                        help=f"sections, regions and desks together (default {DEFAULT_SECTIONS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_COUNT:,} articles in {QUICK_SECTIONS} sections (CI)")
    add_store_arguments(parser)
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"default {REDIS_URL}")
    parser.add_argument("--repeat", type=int, default=REPEAT,
                        help=f"one-article refreshes timed (default {REPEAT})")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
