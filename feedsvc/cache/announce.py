"""Refresh now, not at the next tick: `feedsvc import` announces each commit on a Redis
channel (`RedisCache.announce`); every scheduler listens (`RedisCache.listen`), and the leader
refreshes at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from feedsvc.redis_client import RedisClient

log = logging.getLogger(__name__)


def channel(prefix: str) -> str:
    return f"{prefix}refresh"


def announce(client: RedisClient, prefix: str, reason: str = "import") -> None:
    """Tell running schedulers that the store changed; nobody listening is fine."""
    try:
        client.publish(channel(prefix), reason)
    except redis.RedisError as exc:
        log.warning("could not announce the %s (schedulers will see it at their next tick): %s",
                    reason, exc)


class TriggerListener:
    """A daemon thread calling `on_trigger` for every announcement, reconnecting after
    Redis outages (a Sentinel failover, a cluster node lost) and calling it once more then."""

    def __init__(self, client: RedisClient, prefix: str, on_trigger: Callable[[], None],
                 retry_seconds: float = 2.0):
        self._client = client
        self._channel = channel(prefix)
        self._on_trigger = on_trigger
        self._retry = retry_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="refresh-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self._retry + 2)

    def _run(self) -> None:
        lost = False
        while not self._stopped.is_set():
            try:
                with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    pubsub.subscribe(self._channel)
                    if lost:  # what was announced while the channel was down is gone
                        lost = False
                        self._on_trigger()
                    while not self._stopped.is_set():
                        if pubsub.get_message(timeout=1.0):
                            self._on_trigger()
            except redis.RedisError as exc:
                lost = True
                log.warning("refresh trigger channel lost, retrying: %s", exc)
                self._stopped.wait(self._retry)
