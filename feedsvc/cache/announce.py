"""Refresh now, not at the next tick: `feedsvc import` announces each commit on a Redis
channel (`RedisCache.announce`); every scheduler listens (`RedisCache.listen`), and the leader
refreshes at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from feedsvc.redis_client import RedisClient
from feedsvc.supervised import Supervised

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
    Redis outages (a Sentinel failover, a cluster node lost) and calling it once more then;
    a failure of `on_trigger` is logged, and listening goes on (feedsvc.supervised)."""

    def __init__(self, client: RedisClient, prefix: str, on_trigger: Callable[[], None],
                 retry_seconds: float = 2.0):
        self._client = client
        self._channel = channel(prefix)
        self._on_trigger = on_trigger
        self._retry = retry_seconds
        self._subscribed = False  # once: later subscriptions follow a loss
        self.thread = Supervised("refresh-trigger", self._listen, pause=retry_seconds,
                                 expected=(redis.RedisError,),
                                 what="listening for announcements stopped")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.stop(self._retry + 2)

    def _listen(self) -> None:
        with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
            pubsub.subscribe(self._channel)
            if self._subscribed:  # what was announced while the channel was down is gone
                self._on_trigger()
            self._subscribed = True
            self.thread.recovered()
            while not self.thread.stopping.is_set():
                if pubsub.get_message(timeout=1.0):
                    self._on_trigger()
