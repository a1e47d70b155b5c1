"""gunicorn settings for the web app, where gunicorn is required:
`gunicorn -c config/gunicorn.conf.py 'feedsvc.wsgi:create_app()'`. Environment: PORT, HOST,
WEB_CONCURRENCY (workers), WEB_THREADS, ACCESS_LOG, PROMETHEUS_MULTIPROC_DIR,
FEEDSVC_LOG_FORMAT.

The Procfile's `python -m feedsvc.web` (granian) serves two to three times the requests/s on the
same cores (bench/serve.py). Of gunicorn's worker classes, by the same measurement: gthread and
sync serve about the same; gevent no more, with p99 latencies near a second. gthread keeps
connections alive and a slow reader holds a thread, not a process; but a keep-alive connection
stays with the worker that accepted it, so a few long-lived connections (a benchmark's, a
proxy's) can all land on one worker.
"""

import multiprocessing
import os
import sys

from feedsvc.logs import LogFormatError, log_config
from feedsvc.web.metrics_dir import prepare_metrics_dir

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 30
timeout = 30
graceful_timeout = 10
# No max_requests: nothing leaks that recycling would cure, and a new worker starts with no
# in-process copies and adds a metrics file per process.
accesslog = "-" if os.environ.get("ACCESS_LOG") else None  # set: every request, in the log
errorlog = "-"
try:  # the format of every other feedsvc process (feedsvc/logs.py)
    logconfig_dict = log_config()
except LogFormatError as exc:  # one line, not gunicorn's traceback of this file
    sys.exit(f"Error: {exc}")
# gunicorn >= 25 opens a control socket (worker count, reload, shutdown) in $XDG_RUNTIME_DIR or
# ~/.gunicorn: an admin surface docs/security.md does not have, and one path that every
# gunicorn of the user would fight over.
control_socket_disable = True

_remove_metrics_dir = prepare_metrics_dir()


def on_exit(server):
    _remove_metrics_dir()
