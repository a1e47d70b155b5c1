"""Clocks the tests hand to the parts that take one (`clock=`), so that time passes when a test
says so and no test waits on the wall clock or depends on the day it runs."""

from __future__ import annotations

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
