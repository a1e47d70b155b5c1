"""Feed cache hits answered beneath Flask, the way WhiteNoise serves static files beneath a
framework: a WSGI middleware that looks the document up and answers from the same `answer()`
the Flask route uses. Flask's request context, routing and response objects cost about three
times our own per-request work (bench/serve.py: a minimal Flask app reaches a fifth to a third
of a bare WSGI callable), and a cache hit needs none of them.

Everything else goes to the Flask app unchanged: other URLs and methods, a path that is not a
feed's in the one spelling of feed URLs (feedsvc.urls.feed_target: 404), a Host that is not a
host (400), a cache miss (rendered there), Redis unavailable, a request that accepts none of
our codings (406).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.exceptions import HTTPException

from feedsvc.archives import completed
from feedsvc.cache import CacheUnavailable, FeedCache, FeedKey
from feedsvc.urls import feed_target, feed_url
from feedsvc.web.addresses import Addresses
from feedsvc.web.metrics import CACHE_RESULTS, observe
from feedsvc.web.polls import PollMarks
from feedsvc.web.reach import ReachCounter
from feedsvc.web.responses import CachePolicy, answer

_STATUS = {200: "200 OK", 304: "304 Not Modified"}
_SECTION_ROUTE = "/feeds/<path:section>/<filename>"  # the Flask routes' patterns, for metrics
_SITE_ROUTE = "/feeds/<filename>"


class HitServices(Protocol):
    """What a cache hit needs of the app's services (feedsvc.web.app.Services)."""

    @property
    def cache(self) -> FeedCache: ...

    @property
    def addresses(self) -> Addresses: ...

    @property
    def policy(self) -> CachePolicy: ...

    @property
    def reach(self) -> ReachCounter | None: ...

    @property
    def polls(self) -> PollMarks: ...


class FeedFastPath:
    def __init__(self, app: WSGIApplication, services: HitServices):
        self.app = app
        self.services = services

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD")
        raw_path = environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD") or not raw_path.startswith("/feeds/"):
            return self.app(environ, start_response)
        try:  # WSGI carries the path's bytes as latin-1; section slugs may be UTF-8
            target = feed_target(raw_path.encode("latin-1").decode())
        except UnicodeError:
            target = None
        if target is None:  # no feed in that spelling: Flask 404s
            return self.app(environ, start_response)
        section, filename = target
        services = self.services
        try:
            origin = services.addresses.origin(environ)
            entry = services.cache.get(FeedKey(section, filename, origin))
            if entry is None:
                return self.app(environ, start_response)
            self_url = feed_url(origin, section, filename) if services.policy.hubs else None
            decided = answer(environ, entry, services.policy, self_url,
                             immutable=completed(section))
        except (HTTPException, CacheUnavailable):
            return self.app(environ, start_response)
        CACHE_RESULTS["hit"].inc()
        services.polls.served(section)
        headers = decided.headers
        if decided.status == 200:
            headers = [*headers, ("Content-Length", str(len(decided.body)))]
        start_response(_STATUS[decided.status], headers)
        body = [decided.body] if method == "GET" and decided.status == 200 else []
        if services.reach is not None:
            services.reach.answered(environ, section, filename, origin, decided)
        observe(_SECTION_ROUTE if section else _SITE_ROUTE, method, decided.status, started,
                origin, len(body[0]) if body else 0)
        return body
