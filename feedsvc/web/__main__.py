"""The web process on granian: `python -m feedsvc.web [FACTORY]` (Procfile `web`).

granian, a Rust HTTP server running the Flask app in worker processes, was chosen over
gunicorn's workers by measurement (bench/serve.py, 2 cores, a 130 KB feed): two to three times
the requests/s of gunicorn gthread or sync with lower p99 latency, since parsing HTTP and
writing the bytes cost no Python time. Environment, as for config/gunicorn.conf.py: PORT, HOST,
WEB_CONCURRENCY (worker processes, default one per core), WEB_THREADS (threads running the app
in each, default 4: a miss waits on Redis or the store), ACCESS_LOG (set: log every request),
PROMETHEUS_MULTIPROC_DIR. FACTORY defaults to `feedsvc.web:create_app`.

A request line and headers over MAX_REQUEST_HEAD bytes are refused by granian with 431 (414
for a path over 64 KB), before the app sees them: nginx's defaults allow 32 KB too, and no feed
reader sends more.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

from feedsvc.web.metrics_dir import prepare_metrics_dir

MAX_REQUEST_HEAD = 32 * 1024
# On SIGTERM granian asks each worker to stop and, unless told otherwise, waits for it forever.
# A worker that gets the signal while it is still loading the app ignores it (it has inherited
# the main process's handler, which only sets a flag in its copy; granian 2.8): it then starts
# serving, the main process never exits, and when the platform kills it the worker is left
# behind, holding the port. So a worker still running this long after the request to stop is
# killed (`test_processes.py::test_the_web_stops_on_sigterm_even_while_a_worker_starts`).
WORKER_STOP_SECONDS = 5

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
    remove_metrics_dir = prepare_metrics_dir()  # before the workers import prometheus-client
    try:
        Granian(
            argv[0] if argv else "feedsvc.web:create_app",
            factory=True,
            interface=Interfaces.WSGI,
            address=os.environ.get("HOST", "0.0.0.0"),
            port=int(os.environ.get("PORT", "8000")),
            workers=int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count())),
            blocking_threads=int(os.environ.get("WEB_THREADS", "4")),
            websockets=False,
            http=HTTPModes.http1,
            http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD,
                                         header_read_timeout=HEADER_READ_MILLISECONDS),
            backpressure=connections_per_worker(),
            respawn_failed_workers=True,
            workers_kill_timeout=WORKER_STOP_SECONDS,
            log_access=bool(os.environ.get("ACCESS_LOG")),
        ).serve()
    finally:
        remove_metrics_dir()


if __name__ == "__main__":
    main(sys.argv[1:])
