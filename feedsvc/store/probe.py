"""What `feedsvc check-config --connect` asks of a store: does it answer, which server and
version, are the tables there. Changes nothing: creates no table and no SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, make_url

from feedsvc.store.errors import store_errors
from feedsvc.store.repository import make_engine
from feedsvc.store.schema import metadata


class NoStore(Exception):
    """A SQLite store whose file does not exist yet."""


@dataclass(frozen=True, slots=True)
class StoreProbe:
    server: str  # "postgresql 15.20", "sqlite 3.40.1"
    missing_tables: tuple[str, ...]


def probe(database_url: str) -> StoreProbe:
    """Raises NoStore, or StoreUnavailable when the store does not answer."""
    url = make_url(database_url)
    if (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            and not Path(url.database).is_file()):
        raise NoStore(f"no SQLite file at {url.database}")
    engine = make_engine(database_url)
    try:
        with store_errors(), engine.connect() as conn:
            version = ".".join(map(str, conn.dialect.server_version_info or ()))
            present = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    return StoreProbe(f"{engine.dialect.name} {version}".strip(),
                      tuple(sorted(set(metadata.tables) - present)))
