"""Feed and refresh queries at scale: do they stay fast with 1,000,000 articles in the store?

Fills a store with N generated articles (each validated once, written with `Store.upsert` in
batches of 5,000), then times the reads the service makes for every feed and refresh tick:
`Store.newest` for the site, a section with subsections, a leaf, another section, the same with
an old `now` (an embargo cut deep inside the index) and a section without articles, and
`Store.changed_since` with ~100 changed rows. As the reference, each feed is also read the way a
store without the feed_items table would have to (articles filtered by section prefix, ORDER BY
published) on a plain index on articles(published), which this script adds for the comparison
and drops again. Query plans are printed so the index use can be seen.

    .venv/bin/python bench/store_queries.py [--count N | --quick]
        [--reuse PATH | --database-url URL] [--repeat R]

Filling 1,000,000 articles takes minutes: --reuse keeps the SQLite file for the next run.
Exits 1 when a store query's median exceeds 50 ms; with --quick (CI), when its median CPU time
exceeds QUICK_CPU_BUDGET_MS.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import DateTime, bindparam, event, func, inspect, select, text
from sqlalchemy.engine import Engine

from _common import (
    Budget,
    Timer,
    add_store_arguments,
    backend,
    fill_store,
    machine,
    median_p95_ms,
    open_store,
    print_table,
    store_size,
    store_url,
    vacuum_analyze,
)
from feedsvc.config import load_settings
from feedsvc.store import Store
from feedsvc.store.schema import feed_items

DEFAULT_COUNT = 1_000_000
QUICK_COUNT = 20_000
LIMIT = 50  # items per feed (feeds.items_per_feed)
TOUCHED = 100  # articles re-sent before timing changed_since
MEDIAN_BUDGET_MS = 50.0  # the requirement, wall clock
# --quick (CI) judges each call's median CPU time instead (SQLite works in this process), which
# a busy neighbour does not move: 0.4-4.2 ms measured at 20,000 articles, quiet or beside two
# busy loops; 10 ms is about three times the slowest, under a query that reads the whole table
# (the naive query of a section without articles: 37 ms).
QUICK_CPU_BUDGET_MS = 10.0
REPEAT, QUICK_REPEAT = 200, 50
WARM_UP = 5
MAX_SECONDS = 10.0  # per timed query: a slow naive query gets fewer runs
NAIVE_INDEX = "bench_naive_published"

# What a store without feed_items would run: the section and its subsections by prefix.
NAIVE_SQL = (
    "SELECT document FROM articles WHERE status = 'published'{section} "
    "AND published <= :cutoff ORDER BY published DESC LIMIT :limit"
)
NAIVE_SECTION = " AND (section = :feed OR section LIKE :prefix)"


@dataclass(frozen=True)
class Feed:
    label: str
    path: str
    now: datetime | None = None  # None: the present, as the web process asks
    rows: int = LIMIT


@dataclass(frozen=True)
class Sql:
    """One SELECT exactly as a call sent it (driver SQL and parameters), to re-run or EXPLAIN
    without re-writing the store's query here."""

    engine: Engine
    statement: str
    parameters: Any

    def run(self) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql(self.statement, self.parameters).all()

    def plan(self) -> list[str]:
        """EXPLAIN QUERY PLAN on SQLite; EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL."""
        if self.engine.dialect.name == "sqlite":
            rows = Sql(self.engine, "EXPLAIN QUERY PLAN " + self.statement, self.parameters).run()
            depth = {0: 0}
            for node, parent, _, _ in rows:  # (id, parent, notused, detail)
                depth[node] = depth.get(parent, 0) + 1
            return ["  " * depth[node] + detail for node, _, _, detail in rows]
        explain = "EXPLAIN (ANALYZE, BUFFERS) " + self.statement
        return [line for (line,) in Sql(self.engine, explain, self.parameters).run()]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    count = QUICK_COUNT if args.quick else args.count
    settings = load_settings()
    budget = Budget()
    with store_url(args, "queries.sqlite3") as url, open_store(url) as store:
        print(f"store: {backend(store)}")
        filled = fill_store(store, count, settings, args.seed)
        if store.engine.dialect.name == "postgresql":
            vacuum_analyze(store)
        print(f"store size {store_size(store) / 1e6:,.0f} MB; "
              f"{_count(store, feed_items):,} feed_items rows")
        if filled is not None:
            print(f"filled in {filled.seconds:,.0f} s ({count / filled.seconds:,.0f} "
                  f"articles/s; this process's CPU {filled.cpu:,.0f} s)")

        since = _touch(store)
        feeds = _feeds(store)
        calls: list[tuple[str, Callable[[], Sequence[Any]], int]] = [
            *((f.label, partial(store.newest, f.path, LIMIT, now=f.now), f.rows) for f in feeds),
            (f"changed_since(T, limit=10_000), {TOUCHED} rows after T",
             partial(store.changed_since, since, limit=10_000), TOUCHED),
        ]
        rows: list[list[Any]] = []
        plans: dict[str, Sql] = {}
        for label, call, expected in calls:
            median, p95, cpu = _time(call, expected, args.repeat)
            budget.check(label, median, MEDIAN_BUDGET_MS, "ms median", judge=not args.quick)
            if args.quick:
                budget.check(f"{label}, CPU time", cpu, QUICK_CPU_BUDGET_MS, "ms median")
            plans[label] = sql = _captured(store, call)
            rows.append([label, expected, median, p95, cpu,
                         _time(sql.run, expected, args.repeat)[0]])

        with _naive_index(store) as index_note:
            for feed, row in zip(feeds, rows[: len(feeds)], strict=True):
                naive = _captured(store, _naive_call(store, feed))
                if naive.run() != plans[feed.label].run():
                    print(f"warning: the naive query of {feed.label} returns other articles")
                median, p95, _ = _time(naive.run, feed.rows, args.repeat)
                row += [median, p95, f"{median / row[5]:.1f}x"]
                plans.setdefault(f"naive {feed.path!r}", naive)
            rows[-1] += ["", "", ""]  # changed_since has no naive counterpart
            for label in (feeds[1].label, calls[-1][0], "naive 'news'"):
                print(f"\nplan of {label}:")
                print("\n".join("  " + line for line in plans[label].plan()))

    print(f"\n{count:,} articles; {args.repeat} timed runs per query (fewer when they add up to "
          f"over {MAX_SECONDS:.0f} s) after up to {WARM_UP} warm-up runs")
    print(f"machine: {machine()}")
    print(f"naive reference: {index_note}")
    print("call = the Store method, decoding documents into Articles; SQL = its SELECT alone, "
          "fetching the rows; naive = the articles-only query, fetching the same documents")
    print_table(["query", "rows", "call median ms", "call p95 ms", "call CPU median ms",
                 "SQL median ms",
                 "naive median ms", "naive p95 ms", "naive / SQL"], rows)
    return budget.exit_code()


# ---- the store ------------------------------------------------------------------------------

def _count(store: Store, table: Any) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _touch(store: Store) -> datetime:
    """Re-send the newest TOUCHED articles, as a publisher's correction would, and return a time
    just before: changed_since of it finds exactly those."""
    since = datetime.now(UTC)
    store.upsert(store.newest("", TOUCHED))
    return since


def _feeds(store: Store) -> list[Feed]:
    """The feeds to time; the embargo case cuts at the middle of the published range."""
    with store.engine.connect() as conn:
        oldest, newest = conn.execute(
            select(func.min(feed_items.c.published), func.max(feed_items.c.published))
            .where(feed_items.c.feed == "")
        ).one()
    middle = (oldest + (newest - oldest) / 2).replace(tzinfo=UTC)
    return [
        Feed("newest('', 50): the site", ""),
        Feed("newest('news', 50): section + subsections", "news"),
        Feed("newest('news/turkey', 50): leaf", "news/turkey"),
        Feed("newest('world', 50)", "world"),
        Feed(f"newest('news', 50, now={middle:%Y-%m-%d}): embargo", "news", middle),
        Feed("newest('sport', 50): a section with no articles yet", "sport", rows=0),
    ]


# ---- timing ---------------------------------------------------------------------------------

def _time(query: Callable[[], Sequence[Any]], expected: int,
          repeat: int) -> tuple[float, float, float]:
    """Median and p95 in ms of `repeat` runs, or of as many as fit in MAX_SECONDS for a slow
    query, after up to WARM_UP untimed runs, and the median of this process's CPU time in ms
    (a SQLite query's own: it runs in this process); each run must return `expected` rows."""
    for _ in range(WARM_UP):
        start = time.perf_counter()
        _check(query(), expected)
        if time.perf_counter() - start > 0.1:
            break
    samples: list[float] = []
    cpu: list[float] = []
    while len(samples) < repeat and sum(samples) < MAX_SECONDS:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = query()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        _check(result, expected)
    return (*median_p95_ms(samples), statistics.median(cpu) * 1e3)


def _check(result: Sequence[Any], expected: int) -> None:
    if len(result) != expected:
        sys.exit(f"expected {expected} rows, got {len(result)}")


@contextlib.contextmanager
def _recorded_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with their driver parameters) that `engine` sends while inside, so the
    exact query a Store method runs can be EXPLAINed without re-writing it here."""
    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _captured(store: Store, call: Callable[[], object]) -> Sql:
    """The last SELECT that `call` sends."""
    with _recorded_sql(store.engine) as seen:
        call()
    statement, parameters = next(
        s for s in reversed(seen) if s[0].lstrip().upper().startswith("SELECT")
    )
    return Sql(store.engine, statement, parameters)


# ---- the naive reference --------------------------------------------------------------------

@contextlib.contextmanager
def _naive_index(store: Store) -> Iterator[str]:
    """Make sure a plain index on articles(published) exists for the naive query; one this
    script creates is dropped again, so a reused store stays as the service made it."""
    indexes = inspect(store.engine).get_indexes("articles")
    present = ", ".join(f"{i['name']}({', '.join(i['column_names'])})" for i in indexes)
    existing = [i["name"] for i in indexes if i["column_names"][:1] == ["published"]]
    if existing:
        yield f"the store's own index {existing[0]} on articles(published) is used"
        return
    with Timer() as timer, store.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE INDEX {NAIVE_INDEX} ON articles (published)")
    try:
        yield (f"the store's indexes on articles besides the primary key are {present}, so "
               f"this script added {NAIVE_INDEX} ON articles(published) for the naive query "
               f"({timer.seconds:.1f} s to build; dropped afterwards)")
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {NAIVE_INDEX}")


def _naive_call(store: Store, feed: Feed) -> Callable[[], list[Any]]:
    """The feed read the way a store without feed_items would: by section prefix."""
    statement = text(NAIVE_SQL.format(section=NAIVE_SECTION if feed.path else "")).bindparams(
        bindparam("cutoff", type_=DateTime())
    )
    cutoff = (feed.now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    parameters = {"feed": feed.path, "prefix": feed.path + "/%", "limit": LIMIT, "cutoff": cutoff}

    def run() -> list[Any]:
        with store.engine.connect() as conn:
            return conn.execute(statement, parameters).all()

    return run


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"articles in the store (default {DEFAULT_COUNT:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_COUNT:,}-article run for CI")
    add_store_arguments(parser)
    parser.add_argument("--repeat", type=int, help=f"timed runs per query (default {REPEAT}; "
                                                   f"{QUICK_REPEAT} with --quick)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (QUICK_REPEAT if args.quick else REPEAT)
    return args


if __name__ == "__main__":
    sys.exit(main())
