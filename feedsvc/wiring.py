"""Composition: the parts each process is built from, assembled in one place beside the
command line (feedsvc.cli), so that the packages below receive their parts instead of building
each other's.

`feedsvc serve` is gunicorn in-process, one threaded worker that also runs the scheduler: one
worker because the embedded defaults keep the cache in process memory; the scheduler is
started inside that worker (not in the arbiter) so that it fills the cache the worker serves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from gunicorn.app.base import BaseApplication

from feedsvc.build import FeedBuilder
from feedsvc.cache import SharedCache, open_cache, shared
from feedsvc.config import Settings
from feedsvc.logs import log_config
from feedsvc.refresh import Refresher
from feedsvc.refresh.reach import ReachRollup
from feedsvc.refresh.scheduler import RefreshService
from feedsvc.refresh.websub import WebSubPublisher
from feedsvc.store import Store

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

log = logging.getLogger(__name__)


def cache_of(settings: Settings) -> SharedCache:
    """The configured cache: Redis when `REDIS_URL` is set, else in this process's memory."""
    return open_cache(settings.redis_url, settings.cache_prefix, settings.cache_ttl)


def builder_of(settings: Settings) -> FeedBuilder:
    """The configured store rendered into the configured cache."""
    return FeedBuilder(settings, Store.from_settings(settings), cache_of(settings))


def refresh_service(settings: Settings, builder: FeedBuilder,
                    scheduler: BaseScheduler) -> RefreshService:
    """The refresh jobs on `scheduler`, leading, writing and listening through the builder's
    cache (which offers a lease and announcements whether it is Redis or in process)."""
    if builder.cache is None:
        raise ValueError("a refresh service needs a cache to publish to")
    cache = shared(builder.cache)
    leader = cache.leader_lease(settings.leader_lease)
    writes = cache.fenced_writes(leader)
    websub = WebSubPublisher(settings.websub_hubs)
    refresher = Refresher(builder, on_changed=websub.publish, cache=writes)
    return RefreshService(settings, scheduler, refresher=refresher, leader=leader,
                          writes=writes, listen=cache.listen, websub=websub,
                          rollup=ReachRollup(builder.store, cache.reach(), writes or cache))


class EmbeddedServer(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    """`feedsvc serve`: the web app and the scheduler in one gunicorn worker."""

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

    def load(self) -> WSGIApplication:
        # the web imported here: `feedsvc scheduler` and `feedsvc refresh` do without it
        from feedsvc.web.app import create_app
        from feedsvc.wsgi import with_api

        cache = cache_of(self.settings)
        app = create_app(self.settings, cache=cache)
        # The scheduler writes to the cache itself (with Redis: its leader lock and triggers),
        # not through the web's in-process copies.
        builder = FeedBuilder(self.settings, app.extensions["feedsvc"].builder.store, cache)
        service = refresh_service(self.settings, builder, BackgroundScheduler(daemon=True))
        service.refresh("full")  # the first readers find every feed rendered
        service.start(run_now=False)
        app.extensions["feedsvc"].threads.extend(service.threads)  # on this process's /healthz
        if self.settings.admin_listen:
            from feedsvc.web.admin import serve_admin

            serve_admin(self.settings, cache)
        log.info("serving on http://%s/feeds/rss.xml", self.bind)
        return with_api(app, self.settings, cache)
