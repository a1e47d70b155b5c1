"""Fault fixtures: a PRIVATE Redis and a PRIVATE PostgreSQL cluster per test (so a test may stop,
restart or flush them without touching the shared servers other tests use), and the service
deployed on them (processes.Service: the Procfile's `web` and `scheduler`, `feedsvc` commands).

The servers' binaries are required: a missing one fails the test, never skips it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import DEMO_ARTICLES
from processes import Service, Spawner
from topology import PostgresCluster, RedisServer


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator:
    """Start private Redis servers: `private_redis(*redis_options, persistent=False)`."""
    servers: list[RedisServer] = []

    def start(*options: str, persistent: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", *options,
                             persistent=persistent)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def deployment(tmp_path: Path, spawn: Spawner) -> Callable[..., Service]:
    """`deployment(redis_server, database_url=None, **config_keys)`: the service on a private
    Redis and a store (a SQLite file unless given) holding the demo articles."""

    def make(redis_server: RedisServer, database_url: str | None = None,
             **keys: int) -> Service:
        service = Service.deploy(
            spawn, tmp_path, redis_url=redis_server.url, prefix="feedsvc:", **keys,
            database_url=database_url or f"sqlite:///{tmp_path / 'store.sqlite3'}")
        service.import_(DEMO_ARTICLES)
        return service

    return make
