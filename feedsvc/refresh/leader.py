"""One leader among many schedulers: only the process holding the lease refreshes.

The lease is a Redis lock (redis-py's `Lock`: SET NX PX to take it, Lua scripts to renew and
release only one's own token). Every scheduler calls `hold()` every third of the lease: the
leader renews, the others try to take it; a leader that dies (even by SIGKILL) stops renewing,
and another process takes over within one lease and a third.
"""

from __future__ import annotations

import logging
import uuid

import redis
from redis.exceptions import LockError

from feedsvc.cache.connect import RedisClient

log = logging.getLogger(__name__)


class LeaderLock:
    def __init__(self, client: RedisClient, name: str, lease: int):
        self.name = name
        self._lock = client.lock(name, timeout=lease, blocking=False, thread_local=False)
        self._identity = uuid.uuid4().hex[:8]
        self._leading = False

    def hold(self) -> bool:
        """Whether this process leads now: renew the lease if it is ours, else try to take it."""
        try:
            if self._lock.owned():
                self._lock.reacquire()
                leading = True
            else:
                leading = self._lock.acquire(blocking=False)
        except (LockError, redis.RedisError) as exc:
            log.warning("leader lock %s: %s", self.name, exc)
            leading = False
        if leading != self._leading:
            log.info("scheduler %s %s the lead", self._identity,
                     "takes" if leading else "does not have")
        self._leading = leading
        return leading

    def release(self) -> None:
        try:
            if self._lock.owned():
                self._lock.release()
        except (LockError, redis.RedisError) as exc:
            log.warning("leader lock %s not released: %s", self.name, exc)
        self._leading = False


class SoleLeader:
    """With the in-process cache there is one process, and it always leads."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass
