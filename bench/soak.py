"""Soak: the production processes under a realistic load for a bounded time, while articles
keep coming in; fails on any error or on memory that keeps growing.

Starts the Procfile's `web` (granian, two workers) and `scheduler` against Redis (the shared
one, under a key prefix of our own, deleted at the end) and a store (a fresh SQLite file, or a
schema of our own on the PostgreSQL that `--database-url` names, dropped at the end) filled
with generated articles in many sections. Then, for `--seconds`:

  readers   `--connections` threads, each on a keep-alive connection, request the feeds (every
            section and the site, every format) on every configured address; busier feeds more
            often (weight 1/rank); 70 % of requests conditional (If-None-Match with the ETag
            that thread last got for that URL), 85 % accepting gzip. Every answer is checked:
            a 200 whole (gzip decodes, the document ends as its format ends), a 304 only to a
            conditional request; anything else, and every failed connection, is an error.
  imports   every `--import-every` seconds, `feedsvc import` of 1-3 new articles in random
            sections (it commits and announces; the scheduler refreshes at once).
  memory    VmRSS of the web process with its workers, and of the scheduler, every 5 s.

Reports requests, errors, req/s, p50/p99 latency, the imports and refreshes, and memory at the
end of the warm-up (a tenth of the run, at least 5 s: the workers' in-process copies fill up
then) and at the end. Fails when there was an error (a bad answer, a failed connection, a
failed import or refresh), when the last import is not served within 15 s, or when memory grew
by more than `--max-growth-mb` after the warm-up.

    .venv/bin/python bench/soak.py [--seconds 600] [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from _common import (
    BIN,
    ROOT,
    Budget,
    children,
    fill_store,
    free_port,
    machine,
    open_store,
    percentile_ms,
    print_table,
    service_env,
    start_procfile,
    wait_until_serving,
    write_config,
)
from feedsvc.cache import RedisCache
from feedsvc.config import load_settings
from feedsvc.model import section_slug, split_section
from feedsvc.render.formats import FORMATS

ENDINGS = {"rss.xml": b"</rss>", "atom.xml": b"</feed>", "feed.json": b"}", "roku.json": b"}"}


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children (a granian server's workers), in MiB."""
    total = 0
    for each in [pid, *children(pid)]:
        status = Path(f"/proc/{each}/status").read_text()
        total += int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("VmRSS:")))
    return total / 1024


@dataclass
class Load:
    """The readers: keep-alive connections, weighted feeds, conditional and gzip requests."""

    port: int
    targets: list[tuple[str, str, str]]  # (path, filename, Host)
    connections: int
    latencies: list[float] = field(default_factory=list)
    not_modified: int = 0
    conditional: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.weights = [1 / (rank + 1) for rank in range(len(self.targets))]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(n,), daemon=True)
                        for n in range(self.connections)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _read(self, seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        etags: dict[tuple[str, str], str] = {}
        latencies, not_modified, conditional = [], 0, 0
        while not self.stop.is_set():
            path, filename, host = rng.choices(self.targets, self.weights)[0]
            headers = {"Host": host}
            if rng.random() < 0.85:
                headers["Accept-Encoding"] = "gzip"
            etag = etags.get((path, host + headers.get("Accept-Encoding", "")))
            if etag and rng.random() < 0.7:
                headers["If-None-Match"] = etag
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                latencies.append(time.perf_counter() - started)
                if response.status == 304 and "If-None-Match" in headers:
                    not_modified += 1
                else:
                    _check(response, body, filename)
                    etags[(path, host + headers.get("Accept-Encoding", ""))] = \
                        response.getheader("ETag")
                conditional += "If-None-Match" in headers
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with self.lock:
                    self.errors.append(f"{host}{path} {headers}: {exc!r}"[:400])
                conn.close()
        conn.close()
        with self.lock:
            self.latencies += latencies
            self.not_modified += not_modified
            self.conditional += conditional


def _check(response: http.client.HTTPResponse, body: bytes, filename: str) -> None:
    """A 200 carrying the whole document, else ValueError."""
    if response.status != 200:
        raise ValueError(f"status {response.status}: {body[:200]!r}")
    if response.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    if not body.rstrip().endswith(ENDINGS[filename]):
        raise ValueError(f"{filename} cut short: ...{body[-80:]!r}")


class Imports:
    """`feedsvc import` of 1-3 new articles every `every` seconds, in random sections."""

    def __init__(self, env: dict[str, str], workdir: Path, sections: list[str], every: float):
        self.env, self.workdir, self.sections, self.every = env, workdir, sections, every
        self.runs = 0
        self.articles = 0
        self.errors: list[str] = []
        self.last: tuple[str, str] | None = None  # (section path, title)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(2)
        batch = self.workdir / "import.jsonl"
        while not self.stop.wait(self.every):
            lines, last = [], None
            for _ in range(rng.randint(1, 3)):
                key, section = uuid.uuid4().hex[:12], rng.choice(self.sections)
                last = (section_slug(split_section(section)), f"Soak article {key}")
                lines.append(json.dumps({
                    "id": f"soak-{key}", "url": f"/soak/{key}", "section": section,
                    "title": last[1], "published": datetime.now(UTC).isoformat()}))
            batch.write_text("\n".join(lines) + "\n")
            done = subprocess.run([str(BIN / "feedsvc"), "import", str(batch)], env=self.env,
                                  cwd=ROOT, capture_output=True, text=True)
            if done.returncode:
                self.errors.append(f"import exited {done.returncode}: {done.stderr[-300:]}")
            else:
                self.runs += 1
                self.articles += len(lines)
                self.last = last


def _served(port: int, path: str, title: str, seconds: float) -> bool:
    """Whether the section's RSS feed carries `title` within `seconds`."""
    deadline = time.monotonic() + seconds
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while time.monotonic() < deadline:
            conn.request("GET", f"/feeds/{path}/rss.xml".replace("//", "/"))
            if title.encode() in conn.getresponse().read():
                return True
            time.sleep(0.2)
        return False
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--quick", action="store_true", help="12 s, a smaller store (CI)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--sections", type=int, default=40)
    parser.add_argument("--import-every", type=float, default=3.0)
    parser.add_argument("--max-growth-mb", type=float, default=32.0,
                        help="memory growth after the warm-up allowed to each of web (all "
                             "workers) and scheduler (default 32 MiB)")
    parser.add_argument("--database-url", help="a PostgreSQL server to use a schema of our own "
                                               "on (default: a fresh SQLite file)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.articles, args.sections, args.import_every = 12, 2_000, 10, 1.0
    sections = [f"{top}/Region {n:02d}" for n in range(args.sections // 2)
                for top in ("News", "World")]
    prefix = f"bench-soak-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis_url)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        stack.callback(lambda: client.delete(*client.keys(prefix + "*") or [prefix]))
        store = stack.enter_context(open_store(args.database_url
                                               or f"sqlite:///{workdir / 'store.sqlite3'}"))
        config = write_config(workdir, prefix)
        port = free_port()
        env = service_env(config, store.engine.url.render_as_string(hide_password=False),
                          args.redis_url, PORT=str(port), WEB_CONCURRENCY="2")
        settings = load_settings(config, environ=env)
        fill_store(store, args.articles, settings, seed=7, sections=sections)
        processes = start_procfile(stack, ("scheduler", "web"), env, workdir)
        cache = RedisCache(client, prefix)
        while cache.get_state("refresh") is None:  # the scheduler's start-up rebuild
            if processes["scheduler"].poll() is not None:
                raise SystemExit((workdir / "scheduler.log").read_text()[-3000:])
            time.sleep(0.2)
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", processes["web"],
                           workdir / "web.log")
        paths = sorted({"", *store.section_names()})
        hosts = [origin.split("://", 1)[1] for origin in settings.addresses]
        targets = [(f"/feeds/{path}/{filename}".replace("//", "/"), filename, host)
                   for path in paths for filename in FORMATS for host in hosts]
        random.Random(3).shuffle(targets)
        print(f"store: {store.count():,} articles, {len(paths)} feeds, {len(targets)} URLs "
              f"({len(hosts)} addresses); {args.connections} connections, {args.seconds:.0f} s;"
              f" {machine()}", flush=True)

        load = Load(port, targets, args.connections)
        imports = Imports(env, workdir, sections, args.import_every)
        warmup = max(5.0, args.seconds / 10)
        memory: list[tuple[float, float, float]] = []  # (seconds, web MiB, scheduler MiB)
        started = time.monotonic()
        load.start()
        imports.thread.start()
        while (elapsed := time.monotonic() - started) < args.seconds:
            memory.append((elapsed, rss_mb(processes["web"].pid),
                           rss_mb(processes["scheduler"].pid)))
            if len(memory) % 12 == 0:
                print(f"  {elapsed:5.0f} s: web {memory[-1][1]:.0f} MiB, scheduler "
                      f"{memory[-1][2]:.0f} MiB, {len(load.errors)} errors", flush=True)
            time.sleep(min(5.0, max(0.0, args.seconds - elapsed)))
        imports.stop.set()
        imports.thread.join(60)
        load.finish()
        duration = time.monotonic() - started
        memory.append((duration, rss_mb(processes["web"].pid),
                       rss_mb(processes["scheduler"].pid)))
        scheduler_log = (workdir / "scheduler.log").read_text()
        refreshes = scheduler_log.count(" refresh: ")
        failed = [line for line in scheduler_log.splitlines() if "refresh failed" in line]
        fresh = imports.last is None or _served(port, *imports.last, 15)

    after_warmup = next(sample for sample in memory if sample[0] >= warmup)
    requests = len(load.latencies)
    errors = (load.errors + imports.errors + failed
              + ([] if fresh else ["the last import was not served within 15 s"]))
    for error in errors[:20]:
        print(f"ERROR {error}", file=sys.stderr)
    print_table(["requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms", "304 %",
                 "conditional %", "imports (articles)", "refreshes"],
                [[requests, len(errors), requests / duration,
                  percentile_ms(load.latencies, 0.5), percentile_ms(load.latencies, 0.99),
                  max(load.latencies) * 1e3, 100 * load.not_modified / requests,
                  100 * load.conditional / requests, f"{imports.runs} ({imports.articles})",
                  refreshes]])
    print_table(["RSS MiB", f"start (after {after_warmup[0]:.0f} s warm-up)", "end", "growth",
                 "first sample"],
                [[name, after_warmup[i], memory[-1][i], memory[-1][i] - after_warmup[i],
                  memory[0][i]] for i, name in ((1, "web (server + 2 workers)"),
                                                (2, "scheduler"))])
    budget = Budget()
    budget.check("errors", len(errors), 1, "")
    budget.check("web memory growth", memory[-1][1] - after_warmup[1], args.max_growth_mb, "MiB")
    budget.check("scheduler memory growth", memory[-1][2] - after_warmup[2],
                 args.max_growth_mb, "MiB")
    return budget.exit_code()


if __name__ == "__main__":
    sys.exit(main())
