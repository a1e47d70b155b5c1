"""Clocks the tests hand to the parts that take one (`clock=`), so that time passes when a test
says so and no test waits on the wall clock or depends on the day it runs."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta


class Clock:
    """Stands still at `now` until the test sets it or moves it on."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ShiftedClock:
    """The real clock, moved ahead by what the test `advance`s: it goes on running (the store
    stamps changes with the real clock), and a test skips a wait instead of sleeping it."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += timedelta(seconds=seconds)


def machine_clock_env() -> dict[str, str]:
    """The environment for a server or browser a test starts (redis-server, PostgreSQL,
    Chromium): without the calendar shift tests/clock_ahead/run.sh puts on the test processes,
    so that it keeps the machine's clock, as the shared Redis and PostgreSQL do (and libfaketime
    breaks redis-server's allocator and Chromium's launcher)."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
