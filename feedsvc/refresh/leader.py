"""One leader among many schedulers: only the process holding the lease refreshes.

The lease is a Redis lock (redis-py's `Lock`: SET NX PX to take it, Lua scripts to renew and
release only one's own token). Every scheduler calls `hold()` every third of the lease: the
leader renews, the others try to take it; a leader that dies (even by SIGKILL) stops renewing,
and another process takes over within one lease and a third.

The lease's value is its holder's identity (host:pid:random), so a standby can say who leads;
each process logs when it takes, loses or gives up the lead and when it stands by (and for whom).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import redis
from redis.exceptions import LockError

from feedsvc.cache.connect import RedisClient

log = logging.getLogger(__name__)


class LeaderLock:
    def __init__(self, client: RedisClient, name: str, lease: int):
        self.name = name
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._client = client
        self._lock = client.lock(name, timeout=lease, blocking=False, thread_local=False)
        self._said: str | None = None  # the last state logged: "lead", or whom it stands by for

    def hold(self) -> bool:
        """Whether this process leads now: renew the lease if it is ours, else try to take it."""
        holder = "an unknown process"  # when Redis did not say
        try:
            if self._lock.owned():
                self._lock.reacquire()
                leading = True
            else:
                leading = self._lock.acquire(blocking=False, token=self.identity)
                if not leading:
                    holder = (self._client.get(self.name) or b"nobody").decode(errors="replace")
        except (LockError, redis.RedisError) as exc:
            log.warning("leader lock %s: %s", self.name, exc)
            leading = False
        self._say("lead" if leading else holder)
        return leading

    def _say(self, state: str) -> None:
        """One line when the lead changes hands as this process sees it, not one per renewal."""
        if state == self._said:
            return
        if state == "lead":
            log.info("scheduler %s takes the lead", self.identity)
        elif self._said == "lead":
            log.warning("scheduler %s lost the lead: %s leads", self.identity, state)
        else:
            log.info("scheduler %s stands by: %s leads", self.identity, state)
        self._said = state

    def release(self) -> None:
        try:
            if self._lock.owned():
                self._lock.release()
                log.info("scheduler %s gives up the lead", self.identity)
        except (LockError, redis.RedisError) as exc:
            log.warning("leader lock %s not released: %s", self.name, exc)
        self._said = None


class SoleLeader:
    """With the in-process cache there is one process, and it always leads."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass
