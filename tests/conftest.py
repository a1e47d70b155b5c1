"""Shared fixtures: real Redis and PostgreSQL (never mocked, never skipped), each test in a key
prefix or schema of its own, and a real HTTP server around the Flask app."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from flask import Flask
from werkzeug.serving import make_server

from clocks import machine_clock_env
from feedsvc.build import FeedBuilder
from feedsvc.cache import MemoryCache, RedisCache
from feedsvc.config import Settings, load_settings
from feedsvc.ingest.importer import Importer
from feedsvc.store import Store
from feedsvc.web import create_app

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "tests" / "schemas"  # their sources and licences: SOURCES.md there
SAMPLE_PAGE = ROOT / "feedsvc" / "demo" / "sample-page.txt"
DEMO_ARTICLES = ROOT / "feedsvc" / "demo" / "articles.jsonl"
REDIS_URL = os.environ.get("FEEDSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
pytest_plugins = ["processes", "topology"]  # `spawn`; the Redis Cluster and Sentinel
POSTGRES_URL = os.environ.get(
    "FEEDSVC_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


# What makes a test slow: it starts processes, servers of its own or a browser. Such tests are
# marked by the fixtures they use, so a new one cannot be left out of `slow`; those that start
# a process by hand carry the mark themselves. `tests/run.sh --quick` runs the others.
SLOW_FIXTURES = frozenset({"spawn", "browser", "web_process", "web_env", "redis_servers",
                           "postgres_replication", "private_redis", "private_postgres"})
FAULTS = ROOT / "tests" / "faults"  # every test there breaks a process or a server it started


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if (SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or item.path.is_relative_to(FAULTS)):
            item.add_marker(pytest.mark.slow)
    # The slow ones first, then the long ones: the workers then end together on short tests,
    # not one on a long one.
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None,
                                 item.get_closest_marker("long") is None))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is required and unreachable: {exc}", pytrace=False)
    return client


TEST_KEYS = "feedsvc-test:"
_PREFIXES: dict[str, str] = {}  # every prefix handed out in this process: the test it went to


def own_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A new key prefix; its keys (and only those) are deleted when the generator is resumed
    or closed (`close()` raises GeneratorExit at the yield: hence the finally)."""
    prefix = f"{TEST_KEYS}{uuid.uuid4().hex[:12]}:"
    _PREFIXES[prefix] = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" (")[0]
    try:
        yield prefix
    finally:
        keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            redis_client.delete(*keys)


@pytest.fixture(scope="session", autouse=True)
def no_keys_left_behind(redis_client: redis.Redis) -> Iterator[None]:
    """After the last test (of this pytest worker), no key remains under a prefix its tests
    were given: a leak (a process that wrote after its test's cleanup, a cleanup that did not
    run) would otherwise sit in the shared Redis for the entries' three-day lifetime."""
    yield
    left: dict[str, list[str]] = {}
    for key in redis_client.scan_iter(match=TEST_KEYS + "*", count=1000):
        prefix = key.decode()[:len(TEST_KEYS) + 13]
        if prefix in _PREFIXES:
            left.setdefault(prefix, []).append(key.decode())
    assert not left, "keys left behind in Redis (a few of each prefix, and its test): " + str(
        {prefix: (_PREFIXES[prefix], keys[:5]) for prefix, keys in left.items()})


@pytest.fixture
def redis_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys (and only those) are deleted afterwards."""
    yield from own_prefix(redis_client)


@pytest.fixture
def redis_cache(redis_client: redis.Redis, redis_prefix: str) -> RedisCache:
    return RedisCache(redis_client, redis_prefix)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required and unreachable: {exc}",
                    pytrace=False)


@pytest.fixture
def postgres_schemas(postgres_available: None) -> Iterator[Callable[[], str]]:
    """Makes database URLs whose search_path is a new schema of this test's own (a primary
    and a stand-in replica, say); every schema is dropped afterwards."""
    schemas: list[str] = []

    def make() -> str:
        schemas.append(f"feedsvc_test_{uuid.uuid4().hex[:12]}")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schemas[-1]}"')
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schemas[-1]}"

    yield make
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_url(postgres_schemas: Callable[[], str]) -> str:
    """A database URL whose search_path is a schema of this test's own, dropped afterwards."""
    return postgres_schemas()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on a SQLite file and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    """The repository's demo configuration on a fresh SQLite store, no Redis. Reach counting
    off: an app's counter writes to Redis up to a second after the requests, which may be after
    the test's keys were deleted; the tests of reach turn it on (and LiveServer.stop closes it)."""
    return dataclasses.replace(
        load_settings(ROOT / "config" / "feedsvc.toml", environ={}),
        database_url=sqlite_url, reach_enabled=False,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.database_url)
    yield store
    store.close()


@pytest.fixture
def renderer(settings: Settings, store: Store) -> FeedBuilder:
    return FeedBuilder(settings, store, MemoryCache())


@pytest.fixture
def demo_renderer(settings, store, renderer) -> FeedBuilder:
    """A renderer over the demo articles and the sample page."""
    importer = Importer(settings, store, progress=False)
    assert importer.import_paths([DEMO_ARTICLES]).rejected == 0
    assert importer.import_paths([SAMPLE_PAGE], published="2026-11-20T14:00:00+03:30").accepted == 1
    return renderer


class LiveServer:
    """The Flask app behind a real HTTP server on a loopback port, in a thread."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        # serve_forever polls for shutdown every 0.5 s by default: each test would wait it out
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
        # The feeds app, or the one beneath feedsvc.wsgi's LazyMount when the API is mounted.
        feeds = self.app if isinstance(self.app, Flask) else self.app.app
        reach = feeds.extensions["feedsvc"].reach
        if reach is not None:  # its last counts written now, not after the test's cleanup
            reach.close()


@pytest.fixture
def live_server_factory() -> Iterator:
    servers: list[LiveServer] = []

    def start(settings: Settings, store: Store, cache) -> LiveServer:
        server = LiveServer(create_app(settings, store, cache))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright; if it cannot start, the tests using it
    fail with the reason (tests/run.sh installs it)."""
    from playwright.sync_api import sync_playwright  # loaded by the browser tests only

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              env=machine_clock_env())
        try:
            yield chromium
        finally:
            chromium.close()
