"""URL routes (docs/contracts.md): every document is served from the cache, on a miss rendered
once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import NotFound, ServiceUnavailable

from feedsvc.archives import ARCHIVE_FORMATS, completed, parse_archive_path
from feedsvc.cache import CachedFeed, CacheUnavailable, FeedKey, RenderedFeed
from feedsvc.supervised import down
from feedsvc.urls import feed_target, feed_url
from feedsvc.web.metrics import (
    CACHE_RESULTS,
    RENDERS,
    last_refresh,
    metrics_response,
    refresh_failures,
)
from feedsvc.web.responses import answer, feed_response, flask_response

if TYPE_CHECKING:
    from feedsvc.web.app import Services

log = logging.getLogger(__name__)
blueprint = Blueprint("feeds", __name__)


def _services() -> Services:
    services: Services = current_app.extensions["feedsvc"]
    return services


def _named(key: FeedKey) -> str:
    """The document as its readers name it, its URL on their address, for log lines (not the
    cache's key)."""
    return f"{key.origin}{request.path}"


def _cached(key: FeedKey) -> tuple[CachedFeed | None, str]:
    """The entry, and how the lookup went: hit, miss or unavailable."""
    try:
        entry = _services().cache.get(key)
    except CacheUnavailable as exc:
        log.warning("cache unavailable, rendering %s from the store: %s", _named(key), exc)
        return None, "unavailable"
    return entry, "hit" if entry is not None else "miss"


def _lookup(key: FeedKey, build: Callable[[], dict[FeedKey, RenderedFeed]],
            built_together: str) -> CachedFeed:
    """`key` from the cache, or built by `build` (every document it builds along with `key`,
    every format and address, cached for the next readers). Concurrent misses of any of the
    documents named `built_together` wait for one build. Redis down: built uncached; store
    down: 503."""
    entry, result = _cached(key)
    CACHE_RESULTS[result].inc()
    if entry is not None:
        return entry
    with _services().cache.render_lock(built_together):
        entry, _ = _cached(key)  # rendered by whoever held the lock before us?
        if entry is not None:
            return entry
        return _fill(key, build)


def _fill(key: FeedKey, build: Callable[[], dict[FeedKey, RenderedFeed]]) -> CachedFeed:
    """The miss path: `key` and the documents built with it, built from the store and cached."""
    from feedsvc.build import StoreUnavailable  # the miss path's entry; hits never load it

    services = _services()
    started = time.perf_counter()
    try:
        entries = {k: document.compress() for k, document in build().items()}
    except StoreUnavailable as exc:
        log.error("store unavailable while rendering %s: %s", _named(key), exc)
        raise ServiceUnavailable(retry_after=30) from None
    RENDERS.observe(time.perf_counter() - started)
    try:
        services.cache.put_many(entries)
    except CacheUnavailable as exc:
        log.warning("cache unavailable, %s served uncached: %s", _named(key), exc)
    return entries[key]


@blueprint.get("/feeds/<filename>")
@blueprint.get("/feeds/<path:section>/<filename>")
def feed(**_: str) -> Response:
    """The hot path: Host -> address, the cached entry, validators, bytes. The routes name
    the URL patterns (the metrics' labels); which document, if any, is `feed_target`'s to say,
    as on the fast path."""
    target = feed_target(request.path)
    if target is None:
        raise NotFound()
    section, filename = target
    services = _services()
    environ = request.environ
    origin = services.addresses.origin(environ)

    archive = parse_archive_path(section) is not None
    if archive and filename not in ARCHIVE_FORMATS:
        raise NotFound()

    def build() -> dict[FeedKey, RenderedFeed]:
        if archive:
            return _archive(section)
        spec = services.builder.spec(section)
        if spec is None:
            raise NotFound()
        return services.builder.build(spec)

    entry = _lookup(FeedKey(section, filename, origin), build, f"feed:{section}")
    services.polls.served(section)
    self_url = feed_url(origin, section, filename) if services.policy.hubs else None
    decided = answer(environ, entry, services.policy, self_url, immutable=completed(section))
    if services.reach is not None:
        services.reach.answered(environ, section, filename, origin, decided)
    return flask_response(decided)


def _archive(path: str) -> dict[FeedKey, RenderedFeed]:
    """An RFC 5005 archive's documents; 404 for a month without articles in a known feed."""
    built = _services().builder.build_archive(path)
    if built is None:
        raise NotFound()
    return built


def _site_document(filename: str) -> Response:
    services = _services()
    environ = request.environ
    key = FeedKey("", filename, services.addresses.origin(environ))
    return feed_response(environ, _lookup(key, services.builder.build_site, "site"),
                         services.policy)


@blueprint.get("/")
def index() -> Response:
    return _site_document("index.html")


@blueprint.get("/feeds.opml")
def opml() -> Response:
    return _site_document("feeds.opml")


@blueprint.get("/mirrors.json")
def mirrors() -> Response:
    return _site_document("mirrors.json")


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    services = _services()
    store_ok = services.builder.store.ping()
    cache_ok = services.cache.ping()
    # Serving needs one of the two (cache hits, or rendering from the store): 503 only when
    # neither answers, so a load balancer keeps a degraded process that still serves feeds.
    status = "ok" if store_ok and cache_ok else "degraded" if store_ok or cache_ok else "failing"
    # A background thread not running (feedsvc.supervised): serving goes on, without what it
    # does (reach counts, invalidations of in-process copies: then each hit reads Redis).
    threads_down = down(services.threads)
    if threads_down and status == "ok":
        status = "degraded"
    code = 503 if status == "failing" else 200
    refresh = last_refresh(services.cache) if cache_ok else None
    # A feed the refreshes cannot render (served as it was before), or another part of them
    # failing: degraded, and named.
    failing = refresh_failures(services.cache) if cache_ok else None
    if status == "ok" and failing and (failing["feeds"] or failing["stages"]):
        status = "degraded"
    return jsonify(status=status, store=store_ok, cache=cache_ok, last_refresh=refresh,
                   failing=failing, threads_down=threads_down), code


@blueprint.get("/metrics")
def metrics() -> Response:
    return metrics_response(_services().cache)
