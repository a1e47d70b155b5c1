"""`feedsvc serve`: gunicorn in-process, one threaded worker that also runs the scheduler.

One worker because the embedded defaults keep the cache in process memory; the scheduler is
started inside that worker (not in the arbiter) so that it fills the cache the worker serves.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from gunicorn.app.base import BaseApplication

from feedsvc.cache import open_cache
from feedsvc.config import Settings
from feedsvc.logs import log_config
from feedsvc.refresh import FeedRenderer
from feedsvc.refresh.scheduler import RefreshService
from feedsvc.web.app import create_app

log = logging.getLogger(__name__)


class EmbeddedServer(BaseApplication):
    def __init__(self, settings: Settings, host: str, port: int, threads: int = 8):
        self.settings = settings
        self.bind = f"{host}:{port}"
        self.threads = threads
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self.bind)
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.threads)
        self.cfg.set("accesslog", None)
        self.cfg.set("control_socket_disable", True)  # see config/gunicorn.conf.py
        self.cfg.set("logconfig_dict", log_config())  # the format of every other process

    def load(self):
        cache = open_cache(self.settings.redis_url, self.settings.cache_prefix,
                           self.settings.cache_ttl)
        app = create_app(self.settings, cache=cache)
        # The scheduler writes to the cache itself (with Redis: its leader lock and triggers),
        # not through the web's in-process copies.
        renderer = FeedRenderer(self.settings, app.extensions["feedsvc"].store, cache)
        service = RefreshService(self.settings, renderer, BackgroundScheduler(daemon=True))
        service.refresh("full")  # the first readers find every feed rendered
        service.start(run_now=False)
        log.info("serving on http://%s/feeds/rss.xml", self.bind)
        return app
