"""RFC 5005 archives at scale: what the miss path costs to render one month of thousands of
articles, which an archive document holds without a limit (docs/contracts.md, "Archives").

Fills a store with articles spaced so that a calendar month holds about M of them (two months
and a bit), then times `FeedBuilder.build_archive` of the site feed's fullest month (every
article of that month, RSS and Atom, on the demo configuration's three addresses) and its
compression into cache entries, against the reference measured in the same run: the current
site feed (50 items, four formats, three addresses) built and compressed. Prints the documents'
sizes: what one month costs in Redis.

    .venv/bin/python bench/archives.py [--per-month M | --quick]
        [--reuse PATH | --database-url URL] [--repeat R]

Exits 1 when the month's render and compression take over 60 s (a reader's request waits on it
once; then it is cached); with --quick (CI), when their CPU time is over
QUICK_CPU_BUDGET_SECONDS.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from _common import (
    ROOT,
    Budget,
    Timer,
    add_store_arguments,
    fill_store,
    machine,
    open_store,
    peak_rss_mb,
    print_table,
    store_url,
)
from feedsvc.archives import Month, archive_path
from feedsvc.build import FeedBuilder
from feedsvc.config import load_settings

DEFAULT_PER_MONTH = 5_000
QUICK_PER_MONTH = 300
MONTH_SECONDS = 30.4 * 86_400
BUDGET_SECONDS = 60.0  # wall clock
# --quick (CI) judges this process's CPU time instead, which a busy neighbour does not move:
# 0.44-0.51 s measured for its month of ~300 articles, quiet or beside two busy loops; about
# three times that.
QUICK_CPU_BUDGET_SECONDS = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-month", type=int, default=DEFAULT_PER_MONTH)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_PER_MONTH} articles a month, one repeat")
    parser.add_argument("--repeat", type=int, default=3)
    add_store_arguments(parser)
    args = parser.parse_args()
    per_month = QUICK_PER_MONTH if args.quick else args.per_month
    repeat = 1 if args.quick else args.repeat
    count = int(per_month * 2.2)
    settings = load_settings(ROOT / "config" / "feedsvc.toml", environ={})
    print(f"{count:,} articles, ~{per_month:,} a month; {machine()}")
    with store_url(args, "archives.sqlite3") as url, open_store(url) as store:
        settings = dataclasses.replace(settings, database_url=url)
        filled = fill_store(store, count, settings, seed=5,
                            spacing_seconds=MONTH_SECONDS / per_month)
        if filled is not None:
            print(f"filled in {filled.seconds:.0f} s")
        builder = FeedBuilder(settings, store, None)
        now = datetime.now(UTC)
        months = Counter(Month.of(a.published) for a in store.published_in(
            "", datetime(1970, 1, 1, tzinfo=UTC), now, now))
        month, held = months.most_common(1)[0]
        site = builder.catalog()[""]

        def current() -> int:
            return sum(len(d.compress().br) for d in builder.build(site, now).values())

        def archive() -> int:
            built = builder.build_archive(archive_path("", month), now)
            assert built is not None
            return sum(len(d.compress().br) for d in built.values())

        reference, _ = _time(current, repeat)
        timed, cpu = _time(archive, repeat)
        built = builder.build_archive(archive_path("", month), now)
        assert built is not None
        entries = {key: document.compress() for key, document in built.items()}
        print_table(
            ["what", "items", "median s", "ratio", "bytes (canonical rss / atom)",
             "cache entries, all addresses (MB)"],
            [["current site feed, 4 formats", settings.items_per_feed, reference, 1.0, "", ""],
             [f"archive {month}, 2 formats", held, timed, timed / reference,
              " / ".join(f"{len(e.body):,}" for k, e in entries.items()
                         if k.origin == settings.origin),
              sum(e.size for e in entries.values()) / 1e6]])
        print(f"peak RSS {peak_rss_mb():.0f} MB")
    print(f"archive {month}: median CPU time {cpu:.2f} s")
    budget = Budget()
    what = f"archive of {held:,} articles rendered and compressed"
    budget.check(what, timed, BUDGET_SECONDS, "s", judge=not args.quick)
    if args.quick:
        budget.check(f"{what}, CPU time", cpu, QUICK_CPU_BUDGET_SECONDS, "s")
    return budget.exit_code()


def _time(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The median wall time and median CPU time of this process of `repeat` runs of `work`."""
    timers = []
    for _ in range(repeat):
        with Timer() as timer:
            work()
        timers.append(timer)
    return (statistics.median(t.seconds for t in timers),
            statistics.median(t.cpu for t in timers))


if __name__ == "__main__":
    sys.exit(main())
