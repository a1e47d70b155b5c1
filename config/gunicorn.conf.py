"""gunicorn settings for the `web` process (Procfile). Environment: PORT, WEB_CONCURRENCY."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# Feed requests are short and mostly wait on Redis: a few threads per worker, a worker per core.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 30
timeout = 30
graceful_timeout = 10
max_requests = 100_000
max_requests_jitter = 10_000
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
