"""The source store: articles in SQL (SQLite by default, PostgreSQL in production)."""

from feedsvc.store.errors import StoreUnavailable
from feedsvc.store.repository import ChangedArticle, Store, Written

__all__ = ["ChangedArticle", "Store", "StoreUnavailable", "Written"]
