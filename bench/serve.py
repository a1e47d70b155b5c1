"""Serving speed: the production web process against nginx serving the same bytes statically.

Fills a store with the demo articles and Redis with their feeds through the real commands
(`feedsvc import`, `feedsvc refresh`), writes the site RSS feed's cached bytes (and their gzip
form, for gzip_static) where an nginx of our own serves them, then loads each server with wrk
(one thread, 32 connections, loopback only) in three cases: 200 identity, 200 gzip and 304
(If-None-Match with the server's own ETag). Reports requests/s, latency p50/p99 and the ratio
to nginx in the same run, and each worker's VmRSS after its run, for each serving stack and
Redis access pattern:

  stacks    granian (`python -m feedsvc.web`, the production web process), gunicorn gthread
            (config/gunicorn.conf.py), gunicorn sync, gunicorn gevent (the same config with
            another worker class); two workers each, four for sync
  patterns  near: in-process copies kept valid by Redis invalidation notices (the default);
            plain: one HMGET per request (bench/_serve_plain.py)
  floors    the same bytes from memory with no feed logic, through a minimal Flask app and
            a bare WSGI callable (bench/_serve_floor.py): what the stack itself allows
  front     nginx from config/nginx/feedsvc.conf in front of granian (bench/_nginx.py): the
            feed from its proxy_cache, 200s and 304s, after the first request filled it

    .venv/bin/python bench/serve.py [--quick] [--seconds N] [--database-url URL]
                                    [--only NAME ...] [--rate-limit R]

Needs wrk and nginx (`apt-get install -y wrk nginx-light`) and, for gevent, the `bench` extra.
Every process it starts is stopped and every Redis key it wrote deleted before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import (
    BIN,
    ROOT,
    children,
    delete_keys,
    free_port,
    is_sqlite,
    machine,
    normalise_url,
    pg_schema,
    print_table,
    render_demo_feeds,
    service_env,
    stop,
    wait_until_serving,
    write_config,
)
from _nginx import nginx_front
from feedsvc.cache import FeedKey

HOST = "news.example"
PATH = "/feeds/rss.xml"
KEY = FeedKey("", "rss.xml", f"https://{HOST}")
CONNECTIONS = 32
GUNICORN = [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py"]


@dataclass(frozen=True)
class Server:
    name: str
    command: tuple[str, ...]  # {port} and {app} are filled in
    needs: str = "gunicorn"   # the module it cannot run without

    def argv(self, port: int, app: str) -> list[str]:
        return [part.format(port=port, app=app) for part in self.command]

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.needs) is not None


APPS = {"near": "feedsvc.web:create_app", "plain": "_serve_plain:create_app",
        "floor: minimal Flask": "_serve_floor:flask_app",
        "floor: bare WSGI": "_serve_floor:wsgi_app"}
STACKS = [
    Server("granian", (sys.executable, "-m", "feedsvc.web", "{app}"), "granian"),
    Server("gunicorn gthread", (*GUNICORN, "{app}()")),
    Server("gunicorn sync x4", (*GUNICORN, "--worker-class", "sync", "--workers", "4", "{app}()")),
    Server("gunicorn gevent", (*GUNICORN, "--worker-class", "gevent", "{app}()"), "gevent"),
]
FRONT = "nginx front, granian"  # config/nginx/feedsvc.conf before granian
DEFAULT_RUNS = [(FRONT, "near")] + [(s.name, "near") for s in STACKS] + [
    (stack, app) for stack in ("granian", "gunicorn gthread")
    for app in ("plain", "floor: minimal Flask", "floor: bare WSGI")]

NGINX_CONF = """
daemon off;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    open_file_cache max=100;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/rss+xml xml; }}
    gzip_static on;
    gzip_vary on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def fetch(port: int, headers: dict[str, str]) -> Fetched:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", PATH, headers={"Host": HOST, **headers})
        response = conn.getresponse()
        return Fetched(response.status, response.headers, response.read())
    finally:
        conn.close()


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    """`argv` started in its own session, until it answers on `port`; stopped on exit."""
    with tempfile.TemporaryDirectory() as folder, open(Path(folder) / "log", "wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log,
                                   start_new_session=True)
        try:
            wait_until_serving(f"http://127.0.0.1:{port}{PATH}", process, Path(log.name), 30)
            yield process
        finally:
            stop(process)


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(out: str, percent: int) -> float:
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {percent}% latency in wrk's output:\n{out}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def wrk(port: int, headers: dict[str, str], seconds: float,
        connections: int = CONNECTIONS, script: Path | None = None,
        pinned: Sequence[str] = ()) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms); fails on error statuses, reports socket errors.
    `script`: a wrk Lua script making each request (it then sets the headers); `pinned`: a
    prefix for its command line (taskset)."""
    argv = [*pinned, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "-H", f"Host: {HOST}"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, f"http://127.0.0.1:{port}{PATH}"], capture_output=True,
                         text=True, check=True, timeout=seconds + 30).stdout
    if "Non-2xx or 3xx" in out:
        raise RuntimeError(f"wrk saw error statuses:\n{out}")
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        print(f"    wrk: {errors.group(0)}", file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps, _ms(out, 50), _ms(out, 99)


def cases(port: int, body: bytes, gz: bytes) -> list[tuple[str, dict[str, str]]]:
    """The three cases, each checked once first: right status, coding and bytes."""
    plain = fetch(port, {"Accept-Encoding": "identity"})
    assert plain.status == 200 and plain.body == body, (plain.status, len(plain.body))
    zipped = fetch(port, {"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.body == gz
    etag = plain.headers["ETag"]
    assert fetch(port, {"If-None-Match": etag, "Accept-Encoding": "identity"}).status == 304
    return [("200 identity", {"Accept-Encoding": "identity"}),
            ("200 gzip", {"Accept-Encoding": "gzip"}),
            ("304", {"If-None-Match": etag, "Accept-Encoding": "identity"})]


def measure(port: int, body: bytes, gz: bytes, seconds: float,
            connections: list[int]) -> dict[str, tuple]:
    """Each case at each number of connections (named `case, cN` when there are several)."""
    checked = cases(port, body, gz)
    wrk(port, checked[0][1], 1)  # warm-up: connections, in-process copies
    return {name if len(connections) == 1 else f"{name}, c{n}": wrk(port, headers, seconds, n)
            for n in connections for name, headers in checked}


def worker_rss_mib(pid: int) -> list[float]:
    """VmRSS of each worker (child process) of `pid`, in MiB: what one more worker costs."""
    sizes = []
    for child in children(pid):
        status = Path(f"/proc/{child}/status").read_text()
        sizes.append(int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024)
    return sizes


def serve_statically(tmp: Path, body: bytes, gz: bytes) -> tuple[list[str], int]:
    root = tmp / "www"
    (root / "feeds").mkdir(parents=True)
    (root / "feeds/rss.xml").write_bytes(body)
    (root / "feeds/rss.xml.gz").write_bytes(gz)
    for path in (tmp, root, root / "feeds"):  # nginx workers run as nobody
        path.chmod(0o755)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, root=root, port=port))
    return ["nginx", "-p", str(tmp), "-c", str(conf)], port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per case (default 10)")
    parser.add_argument("--quick", action="store_true", help="1 s per case, for CI")
    parser.add_argument("--connections", type=int, nargs="+", default=[CONNECTIONS],
                        help=f"wrk connections, one run each (default {CONNECTIONS})")
    parser.add_argument("--database-url", help="store (default: a SQLite file of our own; a "
                        "PostgreSQL URL gets a schema of our own, dropped afterwards)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--only", nargs="*", metavar="NAME",
                        help="runs whose 'stack/pattern' contains NAME (default: all)")
    parser.add_argument("--rate-limit", type=float, default=0.0, metavar="R",
                        help="web.rate_limit for the web process, with a burst of R too: set "
                        "high, it refuses nothing and shows what the limit costs (default off)")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y wrk nginx-light", file=sys.stderr)
            return 2
    runs = [(s, p) for s, p in DEFAULT_RUNS
            if not args.only or any(n in f"{s}/{p}" for n in args.only)]
    for server in STACKS:
        if not server.installed and any(s == server.name for s, _ in runs):
            print(f"skipping {server.name}: {server.needs} is not installed "
                  "(pip install -e '.[bench]')", file=sys.stderr)
            runs = [(s, p) for s, p in runs if s != server.name]
    prefix = f"bench-serve:{uuid.uuid4().hex[:8]}:"
    print(f"{machine()}; {seconds:g} s per case, wrk -t1 -c{'/'.join(map(str, args.connections))}")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="feedsvc-serve-")))
        database = normalise_url(args.database_url or f"sqlite:///{tmp / 'store.sqlite3'}")
        if not is_sqlite(database):
            database = stack.enter_context(pg_schema(database))
        stack.callback(delete_keys, args.redis_url, prefix)
        config = write_config(
            tmp, prefix, ("rate_limit = 0\n", f"rate_limit = {args.rate_limit}\n"),
            ("rate_limit_burst = 20\n", f"rate_limit_burst = {max(20, int(args.rate_limit))}\n"))
        env = service_env(config, database, args.redis_url, BENCH_PREFIX=prefix,
                          PYTHONPATH=str(ROOT / "bench"))
        entry = render_demo_feeds(env).get(KEY)
        assert entry is not None, "feedsvc refresh did not fill Redis"
        body, gz = entry.body, entry.gzip
        print(f"feed {PATH} on {HOST}: {len(body):,} bytes, gzip {len(gz):,} bytes")

        results: dict[str, dict[str, tuple]] = {}
        nginx, port = serve_statically(tmp, body, gz)
        with running(nginx, env, port):
            results["nginx (static files)"] = measure(port, body, gz, seconds, args.connections)
        for stack_name, pattern in runs:
            server = next(s for s in STACKS
                          if s.name == ("granian" if stack_name == FRONT else stack_name))
            port = free_port()
            with contextlib.ExitStack() as serving:
                process = serving.enter_context(running(server.argv(port, APPS[pattern]),
                                                        {**env, "PORT": str(port)}, port))
                if stack_name == FRONT:
                    port = serving.enter_context(nginx_front(port)).port
                results[f"{stack_name} / {pattern}"] = measure(port, body, gz, seconds,
                                                               args.connections)
                workers = ", ".join(f"{mib:.1f}" for mib in worker_rss_mib(process.pid))
                print(f"  {stack_name} / {pattern}: worker RSS after the run {workers} MiB")
            print(f"  done: {stack_name} / {pattern}", file=sys.stderr)
    _report(results)
    print(f"after: {machine()}")
    return 0


def _report(results: dict[str, dict[str, tuple]]) -> None:
    reference = results["nginx (static files)"]
    rows = []
    for name, by_case in results.items():
        for case, (rps, p50, p99) in by_case.items():
            ratio = f"{100 * rps / reference[case][0]:.0f} %"
            rows.append((name, case, round(rps), f"{p50:.2f}", f"{p99:.2f}", ratio))
    print_table(["server / Redis access", "case", "requests/s", "p50 ms", "p99 ms", "vs nginx"],
                rows)


if __name__ == "__main__":
    sys.exit(main())
