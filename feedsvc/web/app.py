"""Flask application factory: `gunicorn 'feedsvc.web:create_app()'`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, NotFound

from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedCache, NearCache, open_cache, with_local_copies
from feedsvc.config import Settings, load_settings
from feedsvc.supervised import Supervised
from feedsvc.web.addresses import Addresses
from feedsvc.web.fastpath import FeedFastPath
from feedsvc.web.metrics import instrument
from feedsvc.web.polls import PollMarks
from feedsvc.web.ratelimit import RateLimit, TokenBuckets
from feedsvc.web.reach import ReachCounter
from feedsvc.web.responses import CachePolicy

if TYPE_CHECKING:
    from feedsvc.build import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """What request handlers use; kept on `app.extensions["feedsvc"]`."""

    settings: Settings
    cache: FeedCache
    builder: FeedBuilder
    addresses: Addresses
    policy: CachePolicy
    reach: ReachCounter | None  # None: `reach.enabled` is off
    polls: PollMarks
    threads: list[Supervised]  # this process's background threads, for /healthz


def create_app(
    settings: Settings | None = None, store: Store | None = None, cache: FeedCache | None = None,
    *, near_cache: bool = True,
) -> Flask:
    """Build the app from the configuration (or the given parts, for tests and `serve`).

    A Redis cache is read through in-process copies kept valid by Redis's invalidation
    notices (feedsvc.cache.near); `near_cache=False` reads Redis on every request."""
    settings = settings or load_settings()
    cache = cache or open_cache(settings.redis_url, settings.cache_prefix, settings.cache_ttl)
    if near_cache:
        cache = with_local_copies(cache)
    app = Flask(__name__)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # GET and HEAD only (docs/contracts.md)
    # No redirects: Werkzeug would answer `/feeds//rss.xml` with a 308 to `http://<Host>/…`,
    # built from the request's Host and scheme (an open redirect, and a downgrade of an
    # https origin). A path with an empty segment names no feed: 404.
    app.url_map.merge_slashes = False
    builder = FeedBuilder(settings, store, cache)
    reach = ReachCounter(cache.reach(), settings.trusted_proxies) if settings.reach_enabled \
        else None
    threads = [cache.thread] if isinstance(cache, NearCache) else []
    if reach is not None:
        threads.append(reach.thread)
    app.extensions["feedsvc"] = Services(settings, cache, builder, Addresses(settings),
                                         CachePolicy.from_settings(settings), reach,
                                         PollMarks(cache), threads)
    instrument(app)
    # Flask's own way to wrap the app in WSGI middleware, which mypy sees as a method replaced
    app.wsgi_app = FeedFastPath(app.wsgi_app, app.extensions["feedsvc"])  # type: ignore[method-assign]
    if settings.rate_limit:  # outermost: a refused request costs nothing beneath
        app.wsgi_app = RateLimit(app.wsgi_app,  # type: ignore[method-assign]
                                 TokenBuckets(settings.rate_limit, settings.rate_limit_burst),
                                 settings.trusted_proxies)

    @app.before_request
    def one_spelling() -> None:
        """404 for a path with extra leading slashes, which no URL of ours has: Werkzeug
        routes `//feeds.opml` as `/feeds.opml`, a second URL of every document (and a second
        copy in any cache in front). The fast path leaves such paths to Flask."""
        if request.environ.get("PATH_INFO", "").startswith("//"):
            raise NotFound()

    from feedsvc.web import routes

    app.register_blueprint(routes.blueprint)
    if settings.admin_enabled and settings.admin_listen is None:  # else only on its address
        from feedsvc.web import admin

        admin.install(app, settings, cache)

    @app.errorhandler(HTTPException)
    def short_error(exc: HTTPException) -> Response:
        """Short plain-text bodies for every HTTP error; no HTML pages, no stack traces."""
        response = Response(f"{exc.code} {exc.name}\n", status=exc.code, mimetype="text/plain")
        for header in ("Allow", "Retry-After"):
            if header in exc.get_response().headers:
                response.headers[header] = exc.get_response().headers[header]
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("unhandled error")
        return Response("500 Internal Server Error\n", status=500, mimetype="text/plain")

    return app
