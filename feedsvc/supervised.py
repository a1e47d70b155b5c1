"""Background threads that outlive their failures, and say when one is not running.

Every thread the service starts (reach counts, in-process copies' invalidations, refresh
triggers, WebSub announcements, the admin server) is a `Supervised`: its work runs on a daemon
thread, and an exception is logged and the work started again after a pause (longer while the
failures follow one another, up to MAX_PAUSE). A bug met once, or Redis gone for a while, does
not end the work for the life of the process. The failures its owner expects (a lost Redis
connection) get one WARNING line for a run of them, any other an ERROR with its traceback.

A supervised thread is `down` while its work waits to start again after a failure, or when the
thread ended without its work returning (killed by a BaseException); /healthz names such
threads. APScheduler's jobs need none of this: the scheduler logs a job's exception and runs it
again at its next time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_PAUSE = 30.0  # seconds between two starts of a work that keeps failing


class Supervised:
    """`work` on a daemon thread named `name`, started again `pause` x (failures in a row)
    seconds after it raised. The work waits on `stopping` and returns once it is set (or when
    its job is done); its owner calls `recovered()` when the work is up again (connected, a
    batch written), which ends a run of failures. `what` says what a failure means."""

    def __init__(self, name: str, work: Callable[[], None], *, pause: float = 1.0,
                 expected: tuple[type[Exception], ...] = (), what: str = "failed"):
        self.name = name
        self.stopping = threading.Event()
        self._work = work
        self._pause = pause
        self._expected = expected
        self._what = what
        self._thread: threading.Thread | None = None
        self._pid: int | None = None  # the process it was started in
        self._failures = 0  # in a row
        self._waiting = False  # after a failure, until the work starts again
        self._done = False  # the work returned

    def start(self) -> None:
        """Start the thread; in a forked child, anew (a thread does not survive a fork)."""
        self.stopping.clear()
        self._failures, self._waiting, self._done = 0, False, False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 0.0) -> None:
        """Tell the work to return, and wait up to `timeout` seconds for the thread to end."""
        self.stopping.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive() \
                and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether its thread runs in this process (working or waiting to start again)."""
        thread = self._thread
        return thread is not None and self._pid == os.getpid() and thread.is_alive()

    @property
    def down(self) -> bool:
        """Started in this process and not stopped, yet its work is not running: it waits to
        start again after a failure, or the thread is gone."""
        if self._thread is None or self._pid != os.getpid() or self.stopping.is_set() \
                or self._done:
            return False
        return self._waiting or not self.alive

    def recovered(self) -> None:
        """The work is up again: a run of failures ends (the next pause is the first's)."""
        if self._failures:
            self._failures = 0
            log.info("%s: running again", self.name)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self._waiting = False
            try:
                self._work()
            except Exception as exc:
                if self.stopping.is_set():
                    return
                self._failures += 1
                pause = min(MAX_PAUSE, self._pause * self._failures)
                self._waiting = True
                if not isinstance(exc, self._expected):
                    log.error("%s: %s, starting again in %.1f s", self.name, self._what, pause,
                              exc_info=True)
                else:
                    (log.warning if self._failures == 1 else log.debug)(
                        "%s: %s, starting again in %.1f s: %s", self.name, self._what, pause, exc)
                self.stopping.wait(pause)
            else:
                self._done = True
                return


def down(threads: list[Supervised]) -> list[str]:
    """The names of the threads among `threads` that are down, for /healthz."""
    return sorted(thread.name for thread in threads if thread.down)
