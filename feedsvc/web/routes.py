"""URL routes (design §3): every document is served from the cache, on a miss rendered once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound, ServiceUnavailable

from feedsvc.cache import CachedFeed, CacheUnavailable, FeedKey
from feedsvc.render.formats import FORMATS
from feedsvc.web.responses import feed_response

log = logging.getLogger(__name__)
blueprint = Blueprint("feeds", __name__)


def _services():
    return current_app.extensions["feedsvc"]


def origin_for_request(settings) -> str:
    """The configured address the reader came through; the canonical one for any other Host,
    so a Host header can never put a foreign domain into a feed. X-Forwarded-Host counts only
    when the request comes from a configured trusted proxy."""
    host = request.host
    if request.remote_addr in settings.trusted_proxies:
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
    host = host.lower()
    for address in settings.addresses:
        if address.split("://", 1)[1] == host:
            return address
    return settings.origin


def _serve(key: FeedKey, render: Callable[[], dict[FeedKey, CachedFeed]]):
    """`key` from the cache, or rendered by `render` (every format and address of that
    document, cached for the next readers). Redis down: served uncached; store down: 503."""
    services = _services()
    try:
        entry = services.cache.get(key)
    except CacheUnavailable as exc:
        log.warning("cache unavailable, rendering %s from the store: %s", key, exc)
        entry = None
    if entry is None:
        try:
            entries = render()
        except SQLAlchemyError as exc:
            log.error("store unavailable while rendering %s: %s", key, exc)
            raise ServiceUnavailable(retry_after=30) from None
        try:
            services.cache.put_many(entries)
        except CacheUnavailable as exc:
            log.warning("cache unavailable, %s served uncached: %s", key, exc)
        entry = entries[key]
    return feed_response(request, entry, services.settings.refresh_interval)


@blueprint.get("/feeds/<filename>")
@blueprint.get("/feeds/<path:section>/<filename>")
def feed(filename: str, section: str = ""):
    if filename not in FORMATS:
        raise NotFound()
    services = _services()

    def render():
        spec = services.renderer.catalog().get(section)
        if spec is None:
            raise NotFound()
        return services.renderer.render(spec)

    return _serve(FeedKey(section, filename, origin_for_request(services.settings)), render)


def _site_document(filename: str):
    services = _services()
    key = FeedKey("", filename, origin_for_request(services.settings))
    return _serve(key, services.renderer.render_site)


@blueprint.get("/")
def index():
    return _site_document("index.html")


@blueprint.get("/feeds.opml")
def opml():
    return _site_document("feeds.opml")


@blueprint.get("/mirrors.json")
def mirrors():
    return _site_document("mirrors.json")


@blueprint.get("/healthz")
def healthz():
    services = _services()
    store_ok = services.store.ping()
    cache_ok = services.cache.ping()
    status = "ok" if store_ok and cache_ok else "degraded"
    # Serving needs one of the two (cache hits, or rendering from the store): 503 only when
    # neither answers, so a load balancer keeps a degraded process that still serves feeds.
    code = 200 if store_ok or cache_ok else 503
    return jsonify(status=status, store=store_ok, cache=cache_ok), code
