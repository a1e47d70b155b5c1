"""What the benchmarks share: the store they run against, timing, sizes and budget checks.

Kept in one place so every figure is taken the same way (same settings, same PostgreSQL
isolation, same percentiles, same machine note) and no script carries a copy of another's code.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from article_generator import DEMO_SECTIONS, STORIES, generate_articles
from feedsvc.cache import RedisCache
from feedsvc.config import Settings, settings_from_mapping
from feedsvc.ingest.document import parse_article
from feedsvc.model import Article
from feedsvc.store import Store
from feedsvc.store.schema import metadata

FILL_BATCH = 5_000  # articles per Store.upsert when filling a store


def validate(doc: Any, settings: Settings) -> Article:
    """The importer's validation of one decoded document (raises DocumentError)."""
    return parse_article(doc, origin=settings.origin, timezone=settings.timezone)


# ---- the database under test ----------------------------------------------------------------

def normalise_url(url: str) -> str:
    """The URL as the service would use it (postgresql: -> postgresql+psycopg:)."""
    return settings_from_mapping({"store": {"database_url": url}}).database_url


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A schema of our own (bench_<random>) on the server of `url`, dropped on exit; yields a
    store URL whose search_path points at it, so nothing else in the database is touched."""
    parsed = make_url(url)
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    print(f"PostgreSQL schema {schema} (dropped at the end)")
    try:
        yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--reuse PATH | --database-url URL, as every store benchmark takes them."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--reuse", metavar="PATH",
                       help="a SQLite file kept between runs: filled when empty, else reused")
    where.add_argument("--database-url",
                       help="a PostgreSQL server: a schema of its own, created and dropped, "
                            "unless the URL names one (?options=-csearch_path%%3DNAME: kept); "
                            "default: a temporary SQLite file")


@contextlib.contextmanager
def store_url(args: argparse.Namespace, name: str) -> Iterator[str]:
    """The store the arguments name: --reuse PATH or --database-url as given, else a temporary
    SQLite file called `name`."""
    if args.reuse:
        yield sqlite_url(Path(args.reuse).resolve())
    elif args.database_url:
        if is_sqlite(args.database_url):
            sys.exit("for a SQLite file use --reuse PATH")
        yield args.database_url
    else:
        with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
            yield sqlite_url(Path(tmp) / name)


@contextlib.contextmanager
def open_store(url: str) -> Iterator[Store]:
    """A Store on `url`: a SQLite file as given, or on PostgreSQL a fresh schema of our own
    (dropped afterwards) unless the URL names one (`?options=-csearch_path=NAME`: kept)."""
    url = normalise_url(url)
    with contextlib.ExitStack() as stack:
        if not is_sqlite(url) and "search_path" not in url:
            url = stack.enter_context(pg_schema(url))
        store = Store(url)
        stack.callback(store.close)
        yield store


def fill_store(store: Store, count: int, settings: Settings, seed: int,
               sections: Sequence[str] = DEMO_SECTIONS,
               spacing_seconds: float = 900,
               edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Timer | None:
    """Fill an empty store with `count` generated articles filed in `sections`, about
    `spacing_seconds` apart (each document changed by `edit` if given, validated once, written
    with `Store.upsert` in batches) and return how long it took; a store that already holds
    exactly `count` (a kept file) is used as it is."""
    stale = [t.name for t in metadata.sorted_tables
             if {c["name"] for c in inspect(store.engine).get_columns(t.name)} != set(t.c.keys())]
    if stale:
        sys.exit(f"the store's {', '.join(stale)} table(s) differ from feedsvc/store/schema.py "
                 "(filled by an older version?): delete the file and run again")
    present = store.count()
    if present == count:
        print(f"reusing the {count:,} articles already in the store")
        return None
    if present:
        sys.exit(f"the store holds {present:,} articles, not {count:,}: "
                 "pass the matching count or another store")
    progress = Progress("fill", count)
    done = 0
    # a story pool large enough that every section gets articles (each story has one section)
    documents = generate_articles(count, seed=seed, sections=sections,
                                  stories=max(STORIES, 8 * len(sections)),
                                  spacing_seconds=spacing_seconds)
    articles = (validate(edit(doc) if edit else doc, settings) for doc in documents)
    with Timer() as timer:
        while batch := list(itertools.islice(articles, FILL_BATCH)):
            store.upsert(batch)
            done += len(batch)
            progress.update(done)
    return timer


def vacuum_analyze(store: Store) -> None:
    """What autovacuum would do after a bulk load: planner statistics, visibility map. Only our
    schema's tables are named."""
    with Timer() as timer, store.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) articles, feed_items, sections, labels, "
                              "article_labels")
    print(f"VACUUM (ANALYZE) of the bench tables: {timer.seconds:.0f} s")


def store_size(store: Store) -> int:
    """Bytes on disk: the SQLite file (after a WAL checkpoint), or every table of our schema with
    its indexes and TOAST on PostgreSQL."""
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = Path(store.engine.url.database or "")
            return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        return int(conn.execute(text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )).scalar_one())


def backend(store: Store) -> str:
    engine = store.engine
    if engine.dialect.name == "sqlite":
        return f"SQLite {engine.dialect.dbapi.sqlite_version} ({engine.url.database})"
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar_one()
    return f"PostgreSQL {version} ({engine.url.host}:{engine.url.port}/{engine.url.database})"


# ---- measuring ------------------------------------------------------------------------------

class Timer:
    """`with Timer() as t: ...` then `t.seconds` (wall clock) and `t.cpu` (this process's CPU
    time: when it is well below `seconds`, something else had the cores, or the database)."""

    seconds: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Timer:
        self._start, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.cpu = time.process_time() - self._cpu


def machine() -> str:
    """CPU count and load, printed with every result: the machine may be shared."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile_ms(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` percentile (nearest rank) of durations in seconds, in milliseconds."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1e3


def median_p95_ms(samples: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile (nearest rank) of durations in seconds, in milliseconds."""
    return statistics.median(samples) * 1e3, percentile_ms(samples, 0.95)


class Progress:
    """A progress line every `every` seconds: readable in a terminal and in a CI log alike."""

    def __init__(self, label: str, total: int, every: float = 15.0):
        self.label, self.total, self.every = label, total, every
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        rate = done / (now - self.start)
        eta = (self.total - done) / rate if rate else 0
        print(f"  {self.label}: {done:,}/{self.total:,} ({100 * done / self.total:.0f} %), "
              f"{rate:,.0f}/s, {eta / 60:.1f} min left", file=sys.stderr, flush=True)


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (a granian server's workers)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_seconds(*pids: int) -> float:
    """User + system CPU seconds so far of the processes `pids`, each with its live children
    and its exited, waited-for ones (/proc/PID/stat utime, stime, cutime, cstime): what the
    service's processes did, which other work on the machine slows but does not add to."""
    ticks = 0
    for pid in pids:
        for each in (pid, *children(pid)):
            # the fields after "(comm)": state is field 3, utime .. cstime are fields 14-17
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Budget:
    """Limits the run must stay within; `exit_code()` is 1 when any was exceeded."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, what: str, value: float, limit: float, unit: str,
              judge: bool = True) -> None:
        """`value` against `limit`, failing the run when over; with `judge` false only shown:
        a wall-clock figure in a --quick run, which a busy machine moves (CI judges CPU time
        or a ratio to a reference of the same run instead)."""
        self._judge(what, value, limit, unit, judge, value < limit, "OVER", "limit")

    def at_least(self, what: str, value: float, floor: float, unit: str,
                 judge: bool = True) -> None:
        """As `check`, for a figure that must not fall under `floor`."""
        self._judge(what, value, floor, unit, judge, value >= floor, "UNDER", "floor")

    def _judge(self, what: str, value: float, bound: float, unit: str, judge: bool, ok: bool,
               failed: str, kind: str) -> None:
        verdict = ("ok   " if ok else failed.ljust(5)) if judge else "info "
        print(f"budget {verdict}{what}: {value:,.2f} {unit} ({kind} {bound:,.2f} {unit}"
              f"{'' if judge else '; wall clock, not judged in --quick'})")
        if judge and not ok:
            self.failures.append(what)

    def exit_code(self) -> int:
        if self.failures:
            print(f"FAILED: over budget: {', '.join(self.failures)}", file=sys.stderr)
            return 1
        return 0


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain aligned table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers))] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROCFILE = {name: shlex.split(command) for name, command in (
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines())}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: Path, prefix: str, *edits: tuple[str, str]) -> Path:
    """The repository's config with the Redis key prefix `prefix` (the run's own) and each
    (old, new) text edit, as `folder/feedsvc.toml`."""
    text = (ROOT / "config" / "feedsvc.toml").read_text()
    for old, new in (('key_prefix = "feedsvc:"', f'key_prefix = "{prefix}"'), *edits):
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "feedsvc.toml"
    path.write_text(text)
    return path


def service_env(config: Path, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment the service's processes run in: this interpreter's `feedsvc` first."""
    return {**os.environ, "FEEDSVC_CONFIG": str(config), "DATABASE_URL": database_url,
            "REDIS_URL": redis_url, "HOST": "127.0.0.1", "PATH": f"{BIN}:{os.environ['PATH']}",
            **extra}


def start_procfile(stack: ExitStack, names: Iterable[str], env: dict[str, str],
                   logs: Path) -> dict[str, subprocess.Popen]:
    """The Procfile's processes `names`, as a platform runs them (output in `logs/NAME.log`),
    stopped with SIGTERM when `stack` closes."""
    processes = {}
    for name in names:
        log = stack.enter_context(open(logs / f"{name}.log", "wb"))  # noqa: SIM115 (the stack closes it)
        process = subprocess.Popen(PROCFILE[name], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        stack.callback(process.wait, 15)
        stack.callback(process.terminate)
        processes[name] = process
    return processes


def stop(process: subprocess.Popen, seconds: float = 15) -> None:
    """SIGTERM, then SIGKILL if `process` has not exited within `seconds`."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_serving(url: str, process: subprocess.Popen, log: Path | None = None,
                       seconds: float = 60) -> None:
    """Until `url` answers 2xx. The process exiting first, or no answer in time, ends the
    benchmark with the end of its log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}{_tail(log)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
            return  # non-2xx answers raise HTTPError, an OSError
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s{_tail(log)}")


def _tail(log: Path | None) -> str:
    return f":\n{log.read_text(errors='replace')[-3000:]}" if log and log.exists() else ""


def render_demo_feeds(env: dict[str, str]) -> RedisCache:
    """The demo articles imported and every feed rendered into Redis through the real commands
    (`feedsvc import`, `feedsvc refresh`) in `env` (service_env, with BENCH_PREFIX: the run's
    key prefix); the cache they filled."""
    for argv in (["feedsvc", "import", str(ROOT / "feedsvc/demo/articles.jsonl")],
                 ["feedsvc", "refresh"]):
        subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=300)
    return RedisCache.from_url(env["REDIS_URL"], env["BENCH_PREFIX"])


def delete_keys(url: str, prefix: str) -> None:
    """Every Redis key under the run's `prefix`."""
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])
