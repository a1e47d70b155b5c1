"""Refresh: read the store, render the affected feeds on every address, publish to the cache."""

from feedsvc.refresh.refresher import Refresher, RefreshReport

__all__ = ["RefreshReport", "Refresher"]
