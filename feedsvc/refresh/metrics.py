"""What the scheduler's work costs, as Prometheus metrics: each refresh by kind, the documents
it rendered (each feed's render time is feedsvc.build's) and the parts that failed alone. A
scheduler process serves them itself on `scheduler.metrics_port` (it has no web server); in a
web process they join the web's /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REFRESHES = Histogram(
    "feedsvc_refresh_duration_seconds", "Refreshes by kind: read, render, compress, publish",
    ["kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
REFRESH_DOCUMENTS = Counter(
    "feedsvc_refresh_documents_total", "Documents rendered by refreshes, and of those changed",
    ["outcome"])
REFRESH_FAILURES = Counter(
    "feedsvc_refresh_failures_total",
    "Parts of refreshes that failed alone (feedsvc.refresh.failures): a feed's render, the site "
    "documents, an archive dropped, the embargo timer", ["stage"])
