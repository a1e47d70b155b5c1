"""Tag feeds at scale: 5,000 tags over 1,000,000 articles, the 500 most used polled.

Fills a store with N generated articles whose tags are drawn from a pool of T tag names (in
Latin, Turkish, Persian, Arabic and CJK script, a few with punctuation that gives their slug a
suffix), one to five per article, with a Zipf skew (the n-th most used drawn with weight 1/n:
at 1,000,000 articles the first is on about three in ten, the median one on ~150). The run
renders the P most used tag feeds as their first request would (the web's miss path) and
marks them polled, then changes one article at a time and times the incremental refresh that
follows:

- with tag feeds: the refresh re-renders the article's section feeds and those of its tag
  feeds that are polled (checked: no more, no fewer);
- the reference, in the same run: the same change again with no tag feed polled (the marks
  cleared), where only the section feeds are re-rendered.

It reports both refreshes' median and 95th percentile, the Redis memory of the polled feeds'
documents (MEMORY USAGE of their keys), the first request's render, the full refresh and the
site documents (which count the tags' articles), and what the poll mark costs a hit.

    .venv/bin/python bench/tag_feeds.py [--count N --tags T --polled P | --quick]
        [--reuse PATH | --database-url URL] [--repeat R]

Filling 1,000,000 articles takes a quarter of an hour or more: --reuse keeps the SQLite file.
Exits 1 when a tag feed re-rendered costs the refresh more than 1.5 times what a section feed
does (with --quick, CI: in CPU time, over QUICK_CPU_BUDGET_PER_FEED).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import random
import statistics
import sys
import time
import timeit
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import redis

from _common import (
    Budget,
    Timer,
    add_store_arguments,
    backend,
    delete_keys,
    fill_store,
    machine,
    median_p95_ms,
    open_store,
    print_table,
    store_url,
    vacuum_analyze,
)
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, RedisCache
from feedsvc.config import Settings, load_settings
from feedsvc.model import label_feed, label_slug
from feedsvc.refresh import Refresher
from feedsvc.refresh.refresher import RefreshReport
from feedsvc.store import Store
from feedsvc.urls import FEED_CONTENT_TYPES
from feedsvc.web.polls import PollMarks

DEFAULT_COUNT, DEFAULT_TAGS, DEFAULT_POLLED = 1_000_000, 5_000, 500
QUICK_COUNT, QUICK_TAGS, QUICK_POLLED = 10_000, 500, 20
REPEAT = 20
# A tag feed re-rendered must cost about what a section feed does: the refresh time per feed,
# with tag feeds over without, stays under this (the tag feeds are found by one ZMSCORE and one
# query for their names; reading 50 articles by tag is the same index range as by section).
BUDGET_PER_FEED = 1.5  # of the wall-clock medians
# --quick (CI) judges the same ratio of this process's CPU time, which a busy neighbour does not
# move: 1.10-1.50 measured (10,000 articles, 5 changes each way, quiet or beside two busy
# loops; medians of five are noisy), so 1.5 would fail one run in a few on the code as it is;
# 2.0 still fails a tag feed costing twice a section feed.
QUICK_CPU_BUDGET_PER_FEED = 2.0
QUICK_OVERLAP = 2  # seconds of scheduler.change_overlap in --quick runs, so the wait is short
RECENT = 2_000  # changes are made to the newest articles, where corrections land
REDIS_URL = "redis://127.0.0.1:6379/0"
TAGS_PER_ARTICLE = (1, 2, 3, 3, 4, 5)  # drawn uniformly: three on average

# Words tag names are made of, by script; a name is one word or two.
_WORDS = (
    ("election", "oil", "gas", "drone", "court", "budget", "climate", "football", "health",
     "nuclear", "refugees", "water", "trade", "banking", "cinema", "music", "police",
     "protest", "railway", "science", "space", "tourism", "wildfire", "women", "youth"),
    ("İstanbul", "seçim", "ekonomi", "dış politika", "göç", "deprem", "enflasyon", "çevre",
     "eğitim", "sağlık", "spor", "turizm", "üniversite", "şehir", "ağaç"),
    ("ایران", "انتخابات", "اقتصاد", "تهران", "سینما", "ورزش", "فوتبال", "محیط زیست",
     "می‌خواهم", "آب", "نفت", "زلزله", "دانشگاه", "زنان", "هسته‌ای"),
    ("مصر", "القاهرة", "الاقتصاد", "الانتخابات", "النفط", "غزة", "لبنان", "الرياضة",
     "الصحة", "التعليم", "المياه", "اللاجئين"),
    ("東京", "北京", "経済", "选举", "石油", "气候", "足球", "科学", "健康", "地震"),
)
_PUNCTUATED = ("C++", "C", "U.S.", "AT&T", "R&D", "COVID-19", "G-7", "G7", "F#", "Q&A")


def tag_pool(count: int, seed: int) -> list[str]:
    """`count` tag names whose slugs differ, most used first (the Zipf rank)."""
    rng = random.Random(seed)
    names: dict[str, str] = {}
    for name in _PUNCTUATED:
        names.setdefault(label_slug(name), name)
    words = [w for script in _WORDS for w in script]
    for first, second in itertools.chain(((w, "") for w in words),
                                         iter(lambda: (rng.choice(words), rng.choice(words)),
                                              None)):
        if len(names) >= count:
            break
        name = f"{first} {second}".strip() if first != second else first
        if rng.random() < 0.3:
            name = name.title()
        names.setdefault(label_slug(name), name)
    pool = list(names.values())[:count]
    rng.shuffle(pool)
    return pool


def tagger(pool: list[str], seed: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Gives each document 1-5 tags from `pool`, the n-th most used with weight 1/n."""
    rng = random.Random(seed)
    weights = list(itertools.accumulate(1 / rank for rank in range(1, len(pool) + 1)))

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        drawn = rng.choices(pool, cum_weights=weights, k=rng.choice(TAGS_PER_ARTICLE))
        doc["tags"] = list(dict.fromkeys(drawn))
        return doc

    return edit


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    count, tags, polled_count = ((QUICK_COUNT, QUICK_TAGS, QUICK_POLLED) if args.quick
                                 else (args.count, args.tags, args.polled))
    prefix = f"feedsvc-bench:{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(args.redis_url)
    budget = Budget()
    with (store_url(args, "tag_feeds.sqlite3") as url, open_store(url) as store,
          _deleted(args.redis_url, prefix)):
        print(f"store: {backend(store)}")
        settings = dataclasses.replace(load_settings(), database_url=url, cache_prefix=prefix)
        if args.quick:
            settings = dataclasses.replace(settings, change_overlap=QUICK_OVERLAP)
        pool = tag_pool(tags, args.seed)
        filled = fill_store(store, count, settings, args.seed, edit=tagger(pool, args.seed))
        filled_at = time.monotonic()
        if store.engine.dialect.name == "postgresql" and filled is not None:
            vacuum_analyze(store)
        if filled is not None:
            print(f"filled in {filled.seconds:,.0f} s ({count / filled.seconds:,.0f} articles/s)")
        cache = RedisCache(client, prefix)
        builder = FeedBuilder(settings, store, cache)
        refresher = Refresher(builder)
        with Timer() as full:
            refresher.full()
        with Timer() as site:
            builder.build_site()
        polled = [label_feed("tag", name) for name in pool[:polled_count]]  # the most used
        firsts = [_first_request(builder, cache, path) for path in polled]
        memory = _memory(client, cache, settings, polled)
        wait = filled_at + 2 * settings.change_overlap + 0.5 - time.monotonic()
        if filled is not None and wait > 0:
            print(f"waiting {wait:.0f} s: the fill is within the change overlap window")
            time.sleep(wait)
        refresher.incremental()
        rows = _changes(store, cache, refresher, polled, args)
        wall, cpu = ((rows[0][column] / rows[0][4]) / (rows[1][column] / rows[1][4])
                     for column in (1, 3))
        budget.check("refresh time per feed re-rendered, with tag feeds / without", wall,
                     BUDGET_PER_FEED, "x", judge=not args.quick)
        if args.quick:
            budget.check("refresh CPU time per feed re-rendered, with tag feeds / without", cpu,
                         QUICK_CPU_BUDGET_PER_FEED, "x")
        marks = PollMarks(cache)
        marks.served(polled[0])
        hit_ns = {path: timeit.timeit(lambda p=path: marks.served(p), number=100_000) * 1e4
                  for path in ("news/turkey", polled[0])}

    first_median, first_p95 = median_p95_ms(firsts)
    print(f"\n{count:,} articles, {len(pool):,} tags (Zipf), the {polled_count} most used tag "
          f"feeds polled, {len(settings.addresses)} addresses x {len(FEED_CONTENT_TYPES)} "
          f"formats per feed; machine: {machine()}")
    print(f"full refresh (sections and site, no tag feed): {full.seconds:,.2f} s; "
          f"site documents with the {settings.listed_labels} tags and authors most used lately: "
          f"{site.seconds:,.2f} s")
    print(f"first request of a tag feed (the miss path's render, every format and address): "
          f"{first_median:,.1f} ms median, {first_p95:,.1f} ms p95")
    print(f"Redis memory of the {polled_count} polled tag feeds: {memory / 2**20:,.1f} MiB "
          f"({memory / polled_count / 1024:,.0f} KiB per feed, "
          f"{len(settings.addresses) * len(FEED_CONTENT_TYPES)} documents each)")
    print(f"poll mark on a hit (PollMarks.served, already marked): "
          f"{hit_ns['news/turkey']:,.0f} ns for a section, {hit_ns[polled[0]]:,.0f} ns for a tag")
    print_table(["one changed article, incremental refresh", "median ms", "p95 ms",
                 "CPU median ms", "feeds (median)", "tag feeds", "documents"], rows)
    print(f"ratio with / without tag feeds: {rows[0][1] / rows[1][1]:,.2f}; per feed "
          f"re-rendered {wall:,.2f} (CPU time {cpu:,.2f})")
    return budget.exit_code()


def _first_request(builder: FeedBuilder, cache: RedisCache, path: str) -> float:
    """A tag feed rendered and cached as the web's miss path does, marked polled; seconds."""
    started = time.perf_counter()
    spec = builder.spec(path)
    assert spec is not None, path
    cache.put_many({k: d.compress() for k, d in builder.build(spec).items()})
    cache.mark_polled(path, time.time())
    return time.perf_counter() - started


def _memory(client: redis.Redis, cache: RedisCache, settings: Settings,
            paths: list[str]) -> int:
    """Bytes Redis holds for the documents of `paths` (MEMORY USAGE of each key)."""
    with client.pipeline(transaction=False) as pipe:
        for path in paths:
            for filename in FEED_CONTENT_TYPES:
                for address in settings.addresses:
                    pipe.memory_usage(cache.redis_key(FeedKey(path, filename, address)))
        return sum(n or 0 for n in pipe.execute())


def _changes(store: Store, cache: RedisCache, refresher: Refresher, polled: list[str],
             args: argparse.Namespace) -> list[list[Any]]:
    """One article changed, then an incremental refresh: with the tag feeds polled, and the
    same change again with no tag feed polled (the reference), `args.repeat` times each."""
    rng = random.Random(args.seed)
    recent = store.newest("", RECENT)
    runs: dict[bool, list[tuple[Timer, RefreshReport]]] = {True: [], False: []}
    for _ in range(args.repeat):
        article = rng.choice(recent)
        for with_tags in (True, False):
            if with_tags:
                for path in polled:
                    cache.mark_polled(path, time.time())
            else:
                cache.forget_polls_before(time.time() + 1)
            store.upsert([dataclasses.replace(article, updated=datetime.now(UTC))])
            with Timer() as timer:
                report = refresher.incremental()
            runs[with_tags].append((timer, report))
        own = {label_feed("tag", tag) for tag in article.tags} & set(polled)
        assert runs[True][-1][1].feeds - runs[False][-1][1].feeds == len(own), article.id
    rows = []
    for with_tags, label in ((True, "its polled tag feeds re-rendered"),
                             (False, "reference: no tag feed polled")):
        median, p95 = median_p95_ms([timer.seconds for timer, _ in runs[with_tags]])
        cpu = statistics.median(timer.cpu for timer, _ in runs[with_tags]) * 1e3
        feeds = statistics.median(r.feeds for _, r in runs[with_tags])
        sections = statistics.median(r.feeds for _, r in runs[False])
        rows.append([label, median, p95, cpu, feeds, feeds - sections,
                     statistics.median(r.documents for _, r in runs[with_tags])])
    return rows


@contextlib.contextmanager
def _deleted(url: str, prefix: str) -> Iterator[None]:
    """Delete this run's keys (and only those) afterwards."""
    try:
        yield
    finally:
        delete_keys(url, prefix)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"articles in the store (default {DEFAULT_COUNT:,})")
    parser.add_argument("--tags", type=int, default=DEFAULT_TAGS,
                        help=f"tags in the pool (default {DEFAULT_TAGS:,})")
    parser.add_argument("--polled", type=int, default=DEFAULT_POLLED,
                        help=f"tag feeds polled, the most used (default {DEFAULT_POLLED})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_COUNT:,} articles, {QUICK_TAGS} tags, {QUICK_POLLED} "
                             "polled (CI)")
    add_store_arguments(parser)
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"default {REDIS_URL}")
    parser.add_argument("--repeat", type=int, default=REPEAT,
                        help=f"changes timed each way (default {REPEAT})")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
