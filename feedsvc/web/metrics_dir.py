"""The directory where prometheus-client's multiprocess mode keeps each worker's counts, so
that /metrics in any worker adds up all of them (feedsvc.web.metrics).

Called by the process that starts the workers, before any of them imports prometheus-client
(it reads PROMETHEUS_MULTIPROC_DIR once, at import)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> Callable[[], None]:
    """Use PROMETHEUS_MULTIPROC_DIR if set, emptied of a previous run's files (counts start at
    zero with each server), else a new temporary directory. Returns what removes the latter
    when the server stops."""
    given = os.environ.get(VARIABLE)
    if not given:
        created = tempfile.mkdtemp(prefix="feedsvc-metrics-")
        os.environ[VARIABLE] = created
        return lambda: shutil.rmtree(created, ignore_errors=True)
    directory = Path(given)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return lambda: None
