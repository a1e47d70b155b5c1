"""Fault fixtures: a PRIVATE Redis and a PRIVATE PostgreSQL cluster per test (so a test may stop,
restart or flush them without touching the shared servers other tests use), and the service
deployed on them (processes.Service: the Procfile's `web` and `scheduler`, `feedsvc` commands).

The servers' binaries are required: a missing one fails the test, never skips it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from conftest import DEMO_ARTICLES, free_port
from processes import Service, Spawner
from topology import PostgresCluster

REDIS_SERVER = Path("/usr/bin/redis-server")


class RedisServer:
    """redis-server on a free loopback port with its own directory; nothing kept on disk
    unless `persistent` (append-only file, replayed on restart)."""

    def __init__(self, workdir: Path, *options: str, persistent: bool = False):
        assert REDIS_SERVER.is_file(), f"{REDIS_SERVER} is required (apt-get install redis-server)"
        self.port = free_port()
        self.workdir = workdir
        self.argv = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", str(workdir), "--save", "",
                     "--appendonly", "yes" if persistent else "no", *options]
        self.process: subprocess.Popen | None = None
        self.client = redis.Redis(port=self.port, socket_timeout=5)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.workdir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                assert self.process.poll() is None, f"redis-server exited: {self.log()}"
                assert time.monotonic() < deadline, "redis-server did not answer in 10 s"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file (if any) and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.client.connection_pool.disconnect()

    def log(self) -> str:
        return (self.workdir / "redis.log").read_text(errors="replace")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator:
    """Start private Redis servers: `private_redis(*redis_options, persistent=False)`."""
    servers: list[RedisServer] = []

    def start(*options: str, persistent: bool = False) -> RedisServer:
        workdir = tmp_path / f"redis-{len(servers)}"
        workdir.mkdir()
        server = RedisServer(workdir, *options, persistent=persistent)
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
