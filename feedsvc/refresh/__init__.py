"""Refresh: read the store, render the affected feeds on every address, publish to the cache."""

from feedsvc.refresh.refresher import Refresher, RefreshReport
from feedsvc.refresh.renderer import FeedRenderer

__all__ = ["FeedRenderer", "RefreshReport", "Refresher"]
