"""The web process on granian: `python -m feedsvc.web [FACTORY]` (Procfile `web`).

granian, a Rust HTTP server running the Flask app in worker processes, was chosen over
gunicorn's workers by measurement (bench/serve.py, 2 cores, a 130 KB feed): two to three times
the requests/s of gunicorn gthread or sync with lower p99 latency, since parsing HTTP and
writing the bytes cost no Python time.

Everything a start can fail on — the arguments, the configuration, the log format, the
address — is checked here, in the main process, before any worker starts: each failure is
one line on stderr and exit 1, as for `feedsvc serve` (a worker that fails on it would be
respawned over and over, each time with a traceback).

A request line and headers over MAX_REQUEST_HEAD bytes are refused by granian with 431 (414
for a path over 64 KB), before the app sees them: nginx's defaults allow 32 KB too, and no feed
reader sends more.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
from typing import NoReturn

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

from feedsvc.config import ConfigError, load_settings
from feedsvc.logs import LogFormatError, log_config
from feedsvc.web.listen import CannotListen, check_can_listen
from feedsvc.web.metrics_dir import prepare_metrics_dir

DEFAULT_FACTORY = "feedsvc.wsgi:create_app"
MAX_REQUEST_HEAD = 32 * 1024
# On SIGTERM granian asks each worker to stop and, unless told otherwise, waits for it forever.
# A worker that gets the signal while it is still loading the app ignores it (it has inherited
# the main process's handler, which only sets a flag in its copy; granian 2.8): it then starts
# serving, the main process never exits, and when the platform kills it the worker is left
# behind, holding the port. So a worker still running this long after the request to stop is
# killed (`test_processes.py::test_the_web_stops_on_sigterm_even_while_a_worker_starts`).
WORKER_STOP_SECONDS = 5
# granian's access line without its own timestamp: the log line has one (feedsvc/logs.py).
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f ms'


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 1, like every other start failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m feedsvc.web",
        description="Serve the feeds from the cache on granian (the Procfile `web` process).",
        epilog="Environment: FEEDSVC_CONFIG (config file), HOST and PORT (override web.host "
               "and web.port), WEB_CONCURRENCY (worker processes, default one per core), "
               "WEB_THREADS (threads per worker, default 4: a miss waits on Redis or the "
               "store), ACCESS_LOG (set: log every request), FEEDSVC_LOG_FORMAT (text or "
               "json), PROMETHEUS_MULTIPROC_DIR, and the config's DATABASE_URL, REDIS_URL.")
    parser.add_argument("factory", nargs="?", default=DEFAULT_FACTORY, metavar="FACTORY",
                        help=f"the WSGI app factory (default: {DEFAULT_FACTORY})")
    return parser


# Limits against clients that hold connections without finishing a request, chosen by
# bench/hostile_clients.py (5,000 idle + 2,000 slowloris connections, 2 cores; figures in
# bench/README.md). With granian 2.8's defaults, ~1,100 such connections locked every reader
# out and an idle connection was never closed:
# - HTTP/1 only. In granian's default `auto` mode a connection is first read to tell HTTP/1 from
#   HTTP/2, with no time limit: one that sends nothing is held for ever, and the header read
#   timeout never starts. Nothing in front of the origin speaks cleartext HTTP/2 to it.
# - HEADER_READ_MILLISECONDS: a request head, or the next request on a kept-alive connection,
#   must arrive within 10 s or the connection is closed (measured: 10.0 s for both). A feed
#   reader sends its head in one packet; nginx in front allows the same (client_header_timeout).
# - CONNECTIONS_PER_WORKER (granian's backpressure: connections a worker holds at once; the
#   default, backlog / workers = 512, is the ~1,100 that locked readers out): an idle connection
#   costs the Rust runtime a few KB and no Python thread, so each worker may hold 16,384, as far
#   as its open-files limit allows (raised towards the hard limit; FILES_KEPT spared for Redis,
#   the store and logs). With it and the two settings above, readers kept a p99 under 20 ms and no
#   errors during the attack. The listen backlog (granian's 1,024) made no difference.
HEADER_READ_MILLISECONDS = 10_000
CONNECTIONS_PER_WORKER = 16_384
FILES_KEPT = 256


def connections_per_worker() -> int:
    """CONNECTIONS_PER_WORKER, or fewer when the open-files limit cannot hold that many sockets
    (its soft value is raised first, as far as the hard one allows; the workers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTIONS_PER_WORKER + FILES_KEPT
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return max(1, min(CONNECTIONS_PER_WORKER, soft - FILES_KEPT))


def main(argv: list[str]) -> None:
    factory = _parser().parse_args(argv).factory
    try:
        settings = load_settings()
        logging_config = log_config()
        check_can_listen(settings.host, settings.port)
    except ConfigError as exc:
        sys.exit(f"Error: invalid configuration: {exc}")
    except (LogFormatError, CannotListen) as exc:
        sys.exit(f"Error: {exc}")
    remove_metrics_dir = prepare_metrics_dir()  # before the workers import prometheus-client
    try:
        Granian(
            factory,
            factory=True,
            interface=Interfaces.WSGI,
            address=settings.host,
            port=settings.port,
            workers=int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count())),
            blocking_threads=int(os.environ.get("WEB_THREADS", "4")),
            websockets=False,
            http=HTTPModes.http1,
            http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD,
                                         header_read_timeout=HEADER_READ_MILLISECONDS),
            backpressure=connections_per_worker(),
            respawn_failed_workers=True,
            workers_kill_timeout=WORKER_STOP_SECONDS,
            log_dictconfig=logging_config,
            log_access=bool(os.environ.get("ACCESS_LOG")),
            log_access_format=ACCESS_FORMAT,
        ).serve()
    finally:
        remove_metrics_dir()


if __name__ == "__main__":
    main(sys.argv[1:])
