"""Refresh: read the store, render the affected feeds on every address, publish to the cache."""

from feedsvc.refresh.renderer import FeedRenderer, RefreshReport

__all__ = ["FeedRenderer", "RefreshReport"]
