"""Store topologies: the refresh's reads go to the read replica and imports to the primary;
the pool and the statement timeout come from the configuration. The replica is a real
streaming one (a PostgreSQL primary and hot standby of the test's own), or, where only the
routing is looked at, a second schema standing in for it, so that where each query went shows
in what it finds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import feedparser
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conftest import DEMO_ARTICLES
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, MemoryCache
from feedsvc.config import ConfigError, settings_from_mapping
from feedsvc.ingest.importer import Importer
from feedsvc.refresh import Refresher
from feedsvc.store import Store, StoreUnavailable
from feedsvc.store.repository import EngineOptions

EPOCH = datetime(1970, 1, 2, tzinfo=UTC)


def test_imports_go_to_the_primary_and_the_refresh_reads_the_replica(settings,
                                                                      postgres_schemas):
    primary, replica = postgres_schemas(), postgres_schemas()
    Store(replica).close()  # the replica's tables (a real one has them by replication)
    settings = dataclasses.replace(settings, database_url=primary, replica_url=replica)
    store = Store.from_settings(settings)
    report = Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    assert report.accepted == store.count() > 0  # written to, and counted on, the primary
    # what the refresh reads comes from the replica, which has nothing yet
    assert store.newest("", 50) == []
    assert store.changed_since(EPOCH) == []
    assert store.published_between(EPOCH, datetime.now(UTC)) == []
    assert store.section_names() == {}
    assert Store(primary).newest("", 50) != []
    store.close()


def test_pool_and_statement_timeout_from_the_configuration(postgres_url):
    store = Store(postgres_url, options=EngineOptions(pool_size=3, max_overflow=2,
                                                      pool_timeout=7, statement_timeout=1))
    pool = store.engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 2, 7)
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1s"
        # the URL's own startup options (the test's schema) are kept beside it
        assert conn.execute(text("SELECT current_schema()")).scalar_one().startswith(
            "feedsvc_test_")
        with pytest.raises(OperationalError, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(3)"))
    store.close()


@pytest.mark.parametrize(("timeout", "waits"), [(4, 4000), (None, 10_000)])
def test_sqlite_waits_for_a_lock_as_long_as_the_statement_timeout(sqlite_url, timeout, waits):
    store = Store(sqlite_url, options=EngineOptions(statement_timeout=timeout))
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == waits
    store.close()


def test_a_store_made_without_settings_sets_no_statement_timeout(postgres_url):
    """Benchmarks and maintenance (a VACUUM of a million rows) are not cut short."""
    store = Store(postgres_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    store.close()


@pytest.mark.parametrize(("store", "environ", "expected"), [
    ({}, {}, (None, 5, 10, 30, 30)),
    ({"replica_url": "postgres://r@replica/feeds", "pool_size": 20, "pool_max_overflow": 0,
      "pool_timeout": 5, "statement_timeout": 10}, {},
     ("postgresql+psycopg://r@replica/feeds", 20, 0, 5, 10)),
    ({}, {"DATABASE_REPLICA_URL": "postgresql://r@replica/feeds"},
     ("postgresql+psycopg://r@replica/feeds", 5, 10, 30, 30)),
])
def test_store_settings(store, environ, expected):
    s = settings_from_mapping({"store": store}, environ)
    assert (s.replica_url, s.pool_size, s.pool_max_overflow, s.pool_timeout,
            s.statement_timeout) == expected


@pytest.mark.parametrize(("store", "message"), [
    ({"replica_url": "mysql://x/y"}, "store.replica_url: 'mysql://x/y' must be a sqlite:"),
    ({"pool_size": 0}, "store.pool_size: must be positive"),
    ({"pool_max_overflow": -1}, "store.pool_max_overflow: must be a finite number, not negative"),
    ({"statement_timeout": 0}, "store.statement_timeout: must be positive"),
])
def test_invalid_store_settings(store, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({"store": store})


def test_the_refresh_renders_from_a_streaming_replica_while_the_primary_is_down(
        settings, postgres_replication):
    primary, replica = postgres_replication
    settings = dataclasses.replace(settings, database_url=primary.url, replica_url=replica.url)
    store = Store.from_settings(settings)
    importer = Importer(settings, store, progress=False)
    assert importer.import_paths([DEMO_ARTICLES]).accepted > 50
    replica.wait_for_replay(primary)
    assert len(store.newest("", 50)) == 50  # read from the replica
    primary.stop()

    assert not store.ping()  # the primary
    cache = MemoryCache()
    report = Refresher(FeedBuilder(settings, store, cache)).full()
    assert report.feeds == 6
    site = cache.get(FeedKey("", "atom.xml", "https://news.example"))
    assert len(feedparser.parse(site.body).entries) == 50
    with pytest.raises(StoreUnavailable):  # imports need the primary
        store.upsert(store.newest("", 1))
    store.close()
