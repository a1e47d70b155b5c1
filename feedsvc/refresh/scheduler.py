"""APScheduler wiring: the periodic refresh, in its own process or inside `feedsvc serve`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler

from feedsvc.refresh.renderer import FeedRenderer

log = logging.getLogger(__name__)


def add_refresh_jobs(
    scheduler: BaseScheduler, renderer: FeedRenderer, *, run_now: bool = True
) -> BaseScheduler:
    """Schedule the refresh every `refresh_interval` seconds, the first at once with `run_now`.

    `coalesce` and `max_instances=1`: a slow refresh is never run twice at the same time, and
    missed runs collapse into one.
    """
    first_run = {"next_run_time": datetime.now(UTC)} if run_now else {}  # else the trigger's
    scheduler.add_job(
        _refresh,
        "interval",
        args=[renderer],
        seconds=renderer.settings.refresh_interval,
        **first_run,
        id="refresh",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=renderer.settings.refresh_interval,
    )
    return scheduler


def _refresh(renderer: FeedRenderer) -> None:
    try:
        renderer.refresh_all()
    except Exception:  # a failed run must not kill the scheduler; the next run retries
        log.exception("refresh failed")
