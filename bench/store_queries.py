"""Feed and refresh queries at scale: do they stay fast with 1,000,000 articles in the store?

Fills a store with N generated articles (each validated once, written with `Store.upsert` in
batches of 5,000), then times the reads the service makes for every feed and refresh tick:
`Store.newest` for the site, a section with subsections, a leaf, another section and the same
with an old `now` (an embargo cut deep inside the index), and `Store.changed_since` with ~100
changed rows. As the reference, each feed is also read the way a store without the feed_items
table would have to (articles filtered by section prefix, ORDER BY published) on a plain index on
articles(published), which this script adds for the comparison and drops again. Query plans are
printed so the index use can be seen.

    .venv/bin/python bench/store_queries.py [--count N | --quick]
        [--reuse PATH | --database-url URL] [--repeat R]

Filling 1,000,000 articles takes minutes: --reuse keeps the SQLite file for the next run.
Exits 1 when a store query's median exceeds 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    BATCH,
    Budget,
    Progress,
    Timer,
    backend,
    batched,
    explain,
    is_sqlite,
    median_p95_ms,
    open_store,
    print_table,
    recorded_sql,
    sqlite_url,
    store_size,
    validate,
)
from sqlalchemy import DateTime, bindparam, func, inspect, select, text

from feedsvc.config import Settings, load_settings
from feedsvc.demo.generate import generate_articles
from feedsvc.model import Article
from feedsvc.store import Store
from feedsvc.store.schema import feed_items

DEFAULT_COUNT = 1_000_000
QUICK_COUNT = 20_000
LIMIT = 50  # items per feed (feeds.items_per_feed)
TOUCHED = 100  # articles re-sent before timing changed_since
MEDIAN_BUDGET_MS = 50.0
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


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    count = QUICK_COUNT if args.quick else args.count
    settings = load_settings()
    budget = Budget()
    with _store_url(args) as url, open_store(url) as store:
        print(f"store: {backend(store)}")
        fill_seconds = _fill_or_reuse(store, count, settings, args.seed)
        if store.engine.dialect.name == "postgresql":
            _vacuum_analyze(store)
        print(f"store size {store_size(store) / 1e6:,.0f} MB; "
              f"{_count(store, feed_items):,} feed_items rows")
        if fill_seconds is not None:
            print(f"filled in {fill_seconds:,.0f} s ({count / fill_seconds:,.0f} articles/s)")

        since = _touch(store)
        feeds = _feeds(store)
        rows: list[list[Any]] = []
        for feed in feeds:
            median, p95 = _time(lambda f=feed: store.newest(f.path, LIMIT, now=f.now),
                                LIMIT, args.repeat)
            rows.append([feed.label, LIMIT, median, p95])
            budget.check(feed.label, median, MEDIAN_BUDGET_MS, "ms median")
        label = f"changed_since(T, limit=10_000), {TOUCHED} rows after T"
        median, p95 = _time(lambda: store.changed_since(since, limit=10_000), TOUCHED,
                            args.repeat)
        budget.check(label, median, MEDIAN_BUDGET_MS, "ms median")
        _print_plan("Store.newest('news', 50)", store, lambda: store.newest("news", LIMIT))
        _print_plan("Store.changed_since(T)", store, lambda: store.changed_since(since))

        with _naive_index(store) as index_note:
            naive = _naive_reference(store, feeds, rows, args.repeat)
            _print_plan("naive 'news' (no feed_items)", store, lambda: naive["news"]())

    print(f"\n{count:,} articles; {args.repeat} timed runs per query after 5 warm-up runs; "
          "times include decoding the documents into Articles")
    print(f"naive reference: {index_note}")
    print_table(["query", "rows", "median ms", "p95 ms", "naive median ms", "naive p95 ms",
                 "naive / feed_items"], [*rows, [label, TOUCHED, median, p95, "", "", ""]])
    return budget.exit_code()


# ---- the store ------------------------------------------------------------------------------

@contextlib.contextmanager
def _store_url(args: argparse.Namespace) -> Iterator[str]:
    """--reuse PATH or --database-url as given, else a temporary SQLite file."""
    if args.reuse:
        yield sqlite_url(Path(args.reuse).resolve())
    elif args.database_url:
        yield args.database_url
    else:
        with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
            yield sqlite_url(Path(tmp) / "queries.sqlite3")


def _fill_or_reuse(store: Store, count: int, settings: Settings, seed: int) -> float | None:
    """Fill an empty store with `count` articles and return the seconds it took; a store that
    already holds exactly `count` (a --reuse file) is used as it is."""
    present = store.count()
    if present == count:
        print(f"reusing the {count:,} articles already in the store")
        return None
    if present:
        sys.exit(f"the store holds {present:,} articles, not {count:,}: "
                 "pass the matching --count or another file")
    progress = Progress("fill", count)
    done = 0
    articles = (validate(doc, settings) for doc in generate_articles(count, seed=seed))
    with Timer() as timer:
        for batch in batched(articles, BATCH):
            store.upsert(batch)
            done += len(batch)
            progress.update(done)
    return timer.seconds


def _vacuum_analyze(store: Store) -> None:
    """What autovacuum would do after a bulk load: planner statistics, visibility map. Only our
    schema's tables are named."""
    with Timer() as timer, store.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) articles, feed_items, sections")
    print(f"VACUUM (ANALYZE) of the bench tables: {timer.seconds:.0f} s")


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
    ]


# ---- timing ---------------------------------------------------------------------------------

def _time(query: Callable[[], Sequence[Any]], expected: int, repeat: int) -> tuple[float, float]:
    """Median and p95 in ms of `repeat` runs after 5 warm-up runs; each run must return
    `expected` rows."""
    samples = []
    for run in range(5 + repeat):
        start = time.perf_counter()
        result = query()
        elapsed = time.perf_counter() - start
        if len(result) != expected:
            sys.exit(f"expected {expected} rows, got {len(result)}")
        if run >= 5:
            samples.append(elapsed)
    return median_p95_ms(samples)


def _print_plan(title: str, store: Store, query: Callable[[], object]) -> None:
    with recorded_sql(store.engine) as seen:
        query()
    statement, parameters = next(
        s for s in reversed(seen) if s[0].lstrip().upper().startswith("SELECT")
    )
    print(f"\nplan of {title}:")
    print("\n".join("  " + line for line in explain(store.engine, statement, parameters)))


# ---- the naive reference --------------------------------------------------------------------

@contextlib.contextmanager
def _naive_index(store: Store) -> Iterator[str]:
    """Make sure a plain index on articles(published) exists for the naive query; one this
    script creates is dropped again, so a reused store stays as the service made it."""
    indexes = inspect(store.engine).get_indexes("articles")
    existing = [i["name"] for i in indexes if i["column_names"][:1] == ["published"]]
    if existing:
        yield f"uses the store's own index {existing[0]} on articles(published)"
        return
    with Timer() as timer, store.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE INDEX {NAIVE_INDEX} ON articles (published)")
    try:
        yield (f"articles has no index on published or section, so the script added "
               f"{NAIVE_INDEX} ON articles(published) ({timer.seconds:.1f} s to build; "
               "dropped afterwards)")
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {NAIVE_INDEX}")


def _naive_reference(store: Store, feeds: list[Feed], rows: list[list[Any]],
                     repeat: int) -> dict[str, Callable[[], list[Article]]]:
    """Time the naive query of each feed, check it returns the same articles as Store.newest,
    and extend each feed's row with its times and the ratio."""
    queries = {}
    for feed, row in zip(feeds, rows, strict=True):
        query = _naive_query(store, feed)
        expected = [a.id for a in store.newest(feed.path, LIMIT, now=feed.now)]
        if [a.id for a in query()] != expected:
            print(f"warning: the naive query of {feed.label} returns other articles")
        median, p95 = _time(query, LIMIT, repeat)
        row += [median, p95, f"{median / row[2]:.1f}x"]
        queries.setdefault(feed.path, query)
    return queries


def _naive_query(store: Store, feed: Feed) -> Callable[[], list[Article]]:
    statement = text(NAIVE_SQL.format(section=NAIVE_SECTION if feed.path else "")).bindparams(
        bindparam("cutoff", type_=DateTime())
    )
    parameters = {"feed": feed.path, "prefix": feed.path + "/%", "limit": LIMIT}

    def run() -> list[Article]:
        cutoff = (feed.now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
        with store.engine.connect() as conn:
            documents = conn.execute(statement, {**parameters, "cutoff": cutoff}).scalars()
            return [Article.from_document(json.loads(doc)) for doc in documents]

    return run


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"articles in the store (default {DEFAULT_COUNT:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_COUNT:,}-article run for CI")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--reuse", metavar="PATH",
                       help="a SQLite file kept between runs: filled when empty, else reused")
    where.add_argument("--database-url",
                       help="PostgreSQL (a schema of its own, dropped at the end) or a SQLite "
                            "file; default: a temporary SQLite file")
    parser.add_argument("--repeat", type=int, default=200,
                        help="timed runs per query (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    args = parser.parse_args(argv)
    if args.database_url and is_sqlite(args.database_url):
        parser.error("for a SQLite file use --reuse PATH")
    return args


if __name__ == "__main__":
    sys.exit(main())
