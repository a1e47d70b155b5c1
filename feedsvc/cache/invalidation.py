"""Redis key-change notifications for in-process copies: broadcast key tracking (Redis >= 6).

The listener's own connection turns on `CLIENT TRACKING ... BCAST PREFIX <prefix>` redirected
to itself and subscribes to `__redis__:invalidate`: Redis then names every key under the prefix
that is written, deleted, expired or evicted (or sends nil on FLUSHALL/FLUSHDB), whoever wrote
it. redis-py's own client-side caching does this too, but requires Redis >= 7.4.

The connection speaks RESP2: RESP3 delivers these notices as push frames that redis-py passes
only to private parser hooks, while RESP2 makes them ordinary pub/sub replies.

Tracking is per server: in a Redis Cluster the listener connects to the primary that owns the
cache's slot (its keys share one, see feedsvc.cache.redis) and checks at every heartbeat that
it still does, so a failover or a resharding that moves the slot reconnects it to the new owner.
Under Sentinel its connection goes to the current primary, and Sentinel cuts it at a failover.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable

import redis

from feedsvc.redis_client import RedisClient, node_for, owns
from feedsvc.supervised import Supervised

log = logging.getLogger(__name__)
CHANNEL = "__redis__:invalidate"


def _resp2_connection(client: redis.Redis) -> redis.connection.AbstractConnection:
    """A new connection to `client`'s server (address, TLS, credentials, db) speaking RESP2,
    its replies left as bytes."""
    pool = client.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items()
              if not k.startswith("maint_notifications")}  # RESP3-only options of newer redis-py
    connection: redis.connection.AbstractConnection = pool.connection_class(
        **{**kwargs, "protocol": 2, "decode_responses": False})
    return connection


class InvalidationListener:
    """Calls `on_invalidate(keys)` with the changed keys (None: every key) from a daemon
    thread. `on_connected()` runs once tracking is on and `on_disconnected()` once the stream
    may have a gap (connection lost, heartbeat unanswered): what was read from Redis before
    `on_connected()` or after `on_disconnected()` is not covered by any notice."""

    def __init__(self, client: RedisClient, prefix: str, *,
                 on_invalidate: Callable[[Iterable[bytes] | None], None],
                 on_connected: Callable[[], None], on_disconnected: Callable[[], None],
                 heartbeat: float = 2.0, retry: float = 1.0):
        self.client = client
        self.prefix = prefix
        self.on_invalidate = on_invalidate
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.heartbeat = heartbeat
        self.retry = retry
        self.name = "feedsvc-invalidation:" + re.sub(r"\s", "_", prefix)
        # whatever ends a connection, the stream must come back
        self.thread = Supervised("redis-invalidation", self._listen, pause=retry,
                                 expected=(redis.RedisError, OSError),
                                 what="the invalidation stream stopped, in-process copies are "
                                      "revalidated")
        self._conn: redis.connection.AbstractConnection | None = None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.stopping.set()
        conn = self._conn
        if conn is not None:
            conn.disconnect()  # wakes the thread from its wait for the next notice
        self.thread.stop(self.heartbeat + 1)

    def _listen(self) -> None:
        node = node_for(self.client, self.prefix)
        conn = self._conn = _resp2_connection(node)
        try:
            conn.connect()
            conn.send_command("CLIENT", "SETNAME", self.name)  # for CLIENT LIST
            conn.read_response()
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
            conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id,
                              "BCAST", "PREFIX", self.prefix)
            conn.read_response()
            conn.send_command("SUBSCRIBE", CHANNEL)
            conn.read_response()
            self.thread.recovered()
            self.on_connected()
            try:
                self._receive(conn, lambda: owns(self.client, node, self.prefix))
            finally:
                self.on_disconnected()
        finally:
            conn.disconnect()

    def _receive(self, conn: redis.connection.AbstractConnection,
                 still_tracked: Callable[[], bool]) -> None:
        """Hand on notices until stopped. After a heartbeat without any, a PING; unanswered
        for another heartbeat, the stream is declared lost: a silently dead connection leaves
        copies trusted for two heartbeats at most. Likewise when the server no longer holds
        the keys (`still_tracked`, asked every heartbeat)."""
        awaiting_pong = False
        checked = time.monotonic()
        while not self.thread.stopping.is_set():
            if time.monotonic() - checked >= self.heartbeat:
                if not still_tracked():
                    raise redis.ConnectionError("the keys moved to another server")
                checked = time.monotonic()
            if not conn.can_read(timeout=self.heartbeat):
                if awaiting_pong:
                    raise redis.TimeoutError("no answer to PING within the heartbeat")
                conn.send_command("PING")
                awaiting_pong = True
                continue
            reply = conn.read_response()
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                self.on_invalidate(reply[2])
            else:  # ["pong", ""]
                awaiting_pong = False
