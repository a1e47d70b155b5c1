"""The web process's WSGI app (`python -m feedsvc.web`, gunicorn, `feedsvc serve`): the feeds
(feedsvc.web) and, when `api.tokens` lists any, the ingest API (feedsvc.ingest.api) at /api/.

Composed here, beside the web package rather than in it, because the web never imports ingest
or the store (tests/test_import_graph.py). The API is loaded on the first request under /api/:
a web worker that only serves feeds never loads it, nor SQLAlchemy
(tests/test_hit_path_imports.py). It sits outside the web's per-client rate limit: a CMS sends
from one address, and the API limits each token instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from feedsvc.cache import FeedCache, open_cache, shared
from feedsvc.config import Settings, load_settings
from feedsvc.web.app import create_app as create_feeds_app

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from flask import Flask

    from feedsvc.build import Store

API_PREFIX = "/api/"


class LazyMount:
    """`app`, except that paths under `mount_at` go to the app `load()` returns, called once,
    on the first such request."""

    def __init__(self, app: WSGIApplication, mount_at: str,
                 load: Callable[[], WSGIApplication]):
        self.app = app
        self.mount_at = mount_at
        self._load = load
        self._mounted: WSGIApplication | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.mount_at):
            return self.mounted()(environ, start_response)
        return self.app(environ, start_response)

    def mounted(self) -> WSGIApplication:
        if self._mounted is None:
            with self._lock:
                if self._mounted is None:
                    self._mounted = self._load()
        return self._mounted


def with_api(feeds: Flask, settings: Settings, cache: FeedCache) -> WSGIApplication:
    """The feeds app with the ingest API mounted when tokens are configured, writing to the
    feeds app's store and announcing on `cache`."""
    if not settings.api_tokens:
        return feeds

    def load() -> WSGIApplication:
        from feedsvc.ingest.api import create_api

        return create_api(settings, feeds.extensions["feedsvc"].builder.store,
                          shared(cache).announce)

    return LazyMount(feeds, API_PREFIX, load)


def create_app(settings: Settings | None = None, store: Store | None = None,
               cache: FeedCache | None = None) -> WSGIApplication:
    """The web process's app from the configuration (or the given parts, for tests)."""
    settings = settings or load_settings()
    cache = cache or open_cache(settings.redis_url, settings.cache_prefix, settings.cache_ttl)
    return with_api(create_feeds_app(settings, store, cache), settings, cache)
