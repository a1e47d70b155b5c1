"""Prometheus metrics at /metrics: requests, latency and cache lookups of the web process, the
last refresh as the scheduler recorded it (`cache.get_state("refresh")`).

Under gunicorn each worker is a process: with PROMETHEUS_MULTIPROC_DIR set (config/
gunicorn.conf.py sets it) prometheus-client keeps the counts in files there and a scrape of
any worker sums every worker's. Without it (`feedsvc serve`, tests) they are this process's.
The refresh figures are read from the cache at each scrape, so every process reports the same.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from werkzeug.exceptions import HTTPException

from feedsvc.cache import CacheUnavailable, FeedCache

log = logging.getLogger(__name__)

REQUESTS = Counter("feedsvc_http_requests_total", "HTTP requests answered",
                   ["route", "method", "status"])
LATENCY = Histogram("feedsvc_http_request_duration_seconds",
                    "Time in the app, from the WSGI call to the response (the server's I/O "
                    "excluded)",
                    ["route"], buckets=(.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25,
                                        .5, 1, 2.5))
CACHE_LOOKUPS = Counter("feedsvc_cache_lookups_total",
                        "Document lookups: hit, miss (rendered now) or unavailable (Redis down)",
                        ["result"])
CACHE_RESULTS = {r: CACHE_LOOKUPS.labels(r) for r in ("hit", "miss", "unavailable")}
RENDERS = Histogram("feedsvc_web_render_duration_seconds",
                    "Renders of a missing document by the web process (every format and "
                    "address of one feed); _count is the number of renders",
                    buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5))
BY_ADDRESS = Counter("feedsvc_http_requests_by_address_total",
                     "HTTP requests by the configured address (origin) they came through; "
                     "'canonical' includes unknown hosts, which are served canonical links",
                     ["address"])
BODY_BYTES = Counter("feedsvc_http_response_body_bytes_total",
                     "Response body bytes sent, as stored (compressed when negotiated)",
                     ["route"])
_STARTED = "feedsvc.started"


def instrument(app: Flask) -> None:
    """Count and time every request, errors included, by its route pattern (bounded labels:
    never the raw path or an arbitrary method name). The clock starts before Flask sees the
    request, so routing and context set-up count too."""
    wsgi_app = app.wsgi_app

    def start_clock(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[_STARTED] = time.perf_counter()
        return wsgi_app(environ, start_response)

    app.wsgi_app = start_clock  # type: ignore[method-assign]  # Flask's documented way

    addresses = app.extensions["feedsvc"].addresses

    @app.after_request
    def record(response: Response) -> Response:
        rule = request.url_rule
        try:
            origin = addresses.origin(request.environ)
        except HTTPException:
            origin = "invalid Host"
        sent = 0 if request.method == "HEAD" else response.calculate_content_length() or 0
        observe(rule.rule if rule is not None else "unmatched", request.method,
                response.status_code, request.environ[_STARTED], origin, sent)
        return response


@lru_cache(maxsize=512)
def _children(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled counter and histogram for one combination (labels() costs more than
    inc(): parsed and locked on every call)."""
    return REQUESTS.labels(route, method, status), LATENCY.labels(route)


@lru_cache(maxsize=64)
def _address(origin: str) -> Counter:
    return BY_ADDRESS.labels(origin)


@lru_cache(maxsize=64)
def _bytes(route: str) -> Counter:
    return BODY_BYTES.labels(route)


def observe(route: str, method: str, status: int, started: float, origin: str,
            body_bytes: int) -> None:
    """Count one request, its address, its body bytes and its latency since `started` (a
    perf_counter value)."""
    count, latency = _children(route, method if method in ("GET", "HEAD") else "other", status)
    count.inc()
    _address(origin).inc()
    if body_bytes:
        _bytes(route).inc(body_bytes)
    latency.observe(time.perf_counter() - started)


def last_refresh(cache: FeedCache) -> dict[str, Any] | None:
    """The scheduler's record of its last refresh (`finished_at`, `seconds`, `feeds`,
    `documents`, ...) with `age_seconds` added; None when there is none or it is unreadable."""
    try:
        state = cache.get_state("refresh")
    except CacheUnavailable:
        return None
    if state is None:
        return None
    try:
        refresh: dict[str, Any] = json.loads(state)
        refresh["finished_at"] = float(refresh["finished_at"])
        refresh["seconds"] = float(refresh["seconds"])
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable refresh state: %r", state)
        return None
    refresh["age_seconds"] = round(max(0.0, time.time() - refresh["finished_at"]), 3)
    return refresh


# The parts of a refresh that fail alone (feedsvc.refresh.failures.Stage, which writes the
# `failing` state read here; tests/test_refresh_containment.py checks that they agree).
FAILING_STAGES = ("feed", "site", "archives", "embargo")


def refresh_failures(cache: FeedCache) -> dict[str, list[str]] | None:
    """What the refreshes are failing to do, as they recorded it (feedsvc.refresh.failures):
    `feeds`, the paths of the feeds that did not render, and `stages`, the other parts that
    failed when they last ran. None when the cache cannot say."""
    try:
        state = cache.get_state("failing")
    except CacheUnavailable:
        return None
    try:
        failing = json.loads(state) if state else {}
        return {"feeds": sorted(failing.get("feeds", {})),
                "stages": sorted(failing.get("stages", {}))}
    except (ValueError, AttributeError, TypeError):
        log.warning("unreadable refresh failures: %r", state)
        return None


class RefreshCollector:
    """The last refresh, and what refreshes are failing to do, read at scrape time so every
    process reports the same."""

    def __init__(self, cache: FeedCache):
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        failing = refresh_failures(self.cache)
        if failing is not None:
            gauge = GaugeMetricFamily("feedsvc_refresh_failing",
                                      "Parts of the refresh failing now: feeds that did not "
                                      "render (their documents from before served); the site "
                                      "documents, archives or embargo timer when they last ran",
                                      labels=["stage"])
            for stage in FAILING_STAGES:
                gauge.add_metric([stage], len(failing["feeds"]) if stage == "feed"
                                 else int(stage in failing["stages"]))
            yield gauge
        refresh = last_refresh(self.cache)
        if refresh is None:
            return
        yield GaugeMetricFamily("feedsvc_last_refresh_timestamp_seconds",
                                "When the last refresh finished (Unix time)",
                                value=refresh["finished_at"])
        yield GaugeMetricFamily("feedsvc_last_refresh_duration_seconds",
                                "How long the last refresh took", value=refresh["seconds"])
        yield GaugeMetricFamily("feedsvc_feed_age_seconds",
                                "Time since the last refresh finished: how old the feeds are",
                                value=refresh["age_seconds"])
        for name in ("feeds", "documents"):
            if isinstance(refresh.get(name), int):
                yield GaugeMetricFamily(f"feedsvc_last_refresh_{name}",
                                        f"{name.capitalize()} the last refresh rendered",
                                        value=refresh[name])


class ReachCollector:
    """Estimated subscribers per feed, from the reach report the scheduler's rollup published
    (feedsvc.refresh.reach), read at scrape time."""

    def __init__(self, cache: FeedCache):
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        try:
            state = self.cache.get_state("reach.json")
            feeds = json.loads(state)["feeds"] if state else []
        except CacheUnavailable:
            return
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable reach report")
            return
        gauge = GaugeMetricFamily("feedsvc_reach_subscribers",
                                  "Estimated subscribers of a feed today: aggregators' reported "
                                  "counts + distinct direct pollers (README, Reach)",
                                  labels=["feed"])
        for feed in feeds:
            gauge.add_metric([feed["feed"]], feed["subscribers"])
        yield gauge


class _Scrape:
    """One scrape: the request counts (this process's or all workers') and the refresh."""

    def __init__(self, *collectors: Collector):
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def metrics_response(cache: FeedCache) -> Response:
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    counts = MultiProcessCollector(None, multiproc_dir) if multiproc_dir else REGISTRY
    body = generate_latest(_Scrape(counts, RefreshCollector(cache), ReachCollector(cache)))
    return Response(body, content_type=CONTENT_TYPE_LATEST)
