"""The store's own failure, so that callers catch it without knowing SQLAlchemy (as the cache
has CacheUnavailable): only store/ speaks SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError


class StoreUnavailable(RuntimeError):
    """The store did not answer or refused the statement (down, disk full, read-only file,
    statement timeout). The message is the database driver's own words."""


@contextmanager
def store_errors() -> Iterator[None]:
    """SQLAlchemy's exceptions inside the block come out as StoreUnavailable."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreUnavailable(str(getattr(exc, "orig", None) or exc)) from exc
