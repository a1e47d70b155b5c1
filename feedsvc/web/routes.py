"""URL routes (design §3)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound, ServiceUnavailable

from feedsvc.cache import CacheUnavailable, FeedKey
from feedsvc.render.formats import FORMATS
from feedsvc.web.responses import feed_response

log = logging.getLogger(__name__)
blueprint = Blueprint("feeds", __name__)


def _services():
    return current_app.extensions["feedsvc"]


def _origin_for_request(settings) -> str:
    """The configured address the reader came through; the canonical one for any other Host,
    so a Host header can never put a foreign domain into a feed."""
    host = request.host.lower()
    for address in settings.addresses:
        if address.split("://", 1)[1] == host:
            return address
    return settings.origin


@blueprint.get("/feeds/<filename>")
@blueprint.get("/feeds/<path:section>/<filename>")
def feed(filename: str, section: str = ""):
    if filename not in FORMATS:
        raise NotFound()
    services = _services()
    key = FeedKey(section, filename, _origin_for_request(services.settings))
    try:
        entry = services.cache.get(key)
    except CacheUnavailable as exc:
        log.warning("cache unavailable, rendering %s from the store: %s", key, exc)
        entry = None
    if entry is None:
        entry = _render_on_miss(services, key)
    return feed_response(request, entry, services.settings.refresh_interval)


def _render_on_miss(services, key: FeedKey):
    """A feed not (or no longer) in the cache: render it once for every format and address,
    and cache it if the cache is there."""
    try:
        spec = services.renderer.catalog().get(key.path)
        if spec is None:
            raise NotFound()
        entries = services.renderer.render(spec)
    except SQLAlchemyError as exc:
        log.error("store unavailable while rendering %s: %s", key, exc)
        raise ServiceUnavailable(retry_after=30) from None
    try:
        services.cache.put_many(entries)
    except CacheUnavailable as exc:
        log.warning("cache unavailable, %s served uncached: %s", key, exc)
    return entries[key]


@blueprint.get("/healthz")
def healthz():
    services = _services()
    store_ok = services.store.ping()
    cache_ok = services.cache.ping()
    status = "ok" if store_ok and cache_ok else "degraded"
    return jsonify(status=status, store=store_ok, cache=cache_ok), 200 if cache_ok else 503
