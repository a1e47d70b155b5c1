"""What the scheduler's work costs, as Prometheus metrics: each refresh by kind and each feed
render. A scheduler process serves them itself on `scheduler.metrics_port` (it has no web
server); in a web process they join the web's /metrics (renders of cache misses)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REFRESHES = Histogram(
    "feedsvc_refresh_duration_seconds", "Refreshes by kind: read, render, compress, publish",
    ["kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
REFRESH_DOCUMENTS = Counter(
    "feedsvc_refresh_documents_total", "Documents rendered by refreshes, and of those changed",
    ["outcome"])
FEED_RENDERS = Histogram(
    "feedsvc_feed_render_duration_seconds",
    "One feed rendered in every format on every address (query included)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
