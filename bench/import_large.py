"""Import of a 1 GB JSON Lines file in bounded memory: does memory grow with the file?

Generates about SIZE bytes of articles (bench/article_generator.py, in a child process so its pools
do not count) into a temporary JSON Lines file, then imports it with the real
`Importer.import_paths` into a temporary SQLite store and reports wall time, articles/s and
the import's peak RSS (this process's `ru_maxrss`; /proc/self/status VmHWM says the same).

    .venv/bin/python bench/import_large.py [--size-mb N | --quick]

Exits 1 when the peak RSS reaches PEAK_RSS_MB: the importer reads line by line and writes in
batches of 1,000, so its memory is one batch and the store's buffers, whatever the file's size.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import tempfile
from pathlib import Path

from _common import Budget, Timer, backend, machine, open_store, peak_rss_mb, sqlite_url
from article_generator import generate_articles, write_jsonl
from feedsvc.config import load_settings
from feedsvc.ingest.importer import Importer

DEFAULT_MB = 1024
QUICK_MB = 50
PEAK_RSS_MB = 128  # whatever the file size: the 50 MiB and 1 GiB runs both peak at 69 MiB
SAMPLE = 2_000


def article_count(size_bytes: int) -> int:
    """How many generated articles make about `size_bytes` of JSON Lines."""
    sample = generate_articles(SAMPLE)
    mean = sum(len(json.dumps(a, ensure_ascii=False, separators=(",", ":")).encode()) + 1
               for a in sample) / SAMPLE
    return math.ceil(size_bytes / mean)


def _generate(path: Path, count: int) -> None:
    write_jsonl(path, generate_articles(count))


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    size_mb = QUICK_MB if args.quick else args.size_mb
    count = article_count(size_mb * 1024 * 1024)
    settings = load_settings()
    budget = Budget()
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        jsonl = Path(tmp) / "articles.jsonl"
        with Timer() as generated:
            child = multiprocessing.get_context("fork").Process(target=_generate,
                                                                 args=(jsonl, count))
            child.start()
            child.join()
        if child.exitcode:
            sys.exit(f"generating the articles failed ({child.exitcode})")
        file_mb = jsonl.stat().st_size / 1024 / 1024
        print(f"generated {count:,} articles in {generated.seconds:.0f} s: {file_mb:,.0f} MiB")
        before = peak_rss_mb()
        with open_store(sqlite_url(Path(tmp) / "import.sqlite3")) as store:
            print(f"store: {backend(store)}; settings: {settings.source}")
            with Timer() as imported:
                report = Importer(settings, store, progress=False).import_paths([jsonl])
        peak = peak_rss_mb()
    if report.rejected or report.accepted != count:
        sys.exit(f"the import did not take every generated article: {report}")
    print(f"\nmachine: {machine()}")
    print(f"imported {count:,} articles ({file_mb:,.0f} MiB) in {imported.seconds:,.1f} s "
          f"(CPU {imported.cpu:,.1f} s): {count / imported.seconds:,.0f} articles/s, "
          f"{file_mb / imported.seconds:.1f} MiB/s")
    print(f"peak RSS {peak:.0f} MiB (before the import {before:.0f} MiB)")
    budget.check(f"peak RSS importing {file_mb:,.0f} MiB", peak, PEAK_RSS_MB, "MiB")
    return budget.exit_code()


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=DEFAULT_MB,
                        help=f"JSON Lines to generate and import, MiB (default {DEFAULT_MB:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a {QUICK_MB} MiB run for CI (same memory bound)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
