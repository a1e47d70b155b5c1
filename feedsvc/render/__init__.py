"""Rendering: articles in, documents out, one per (feed, format, address); pure, it knows no
store, cache or web. What is imported from here is the package's public entry point
(feedsvc.build takes the store's articles through it); the modules beneath are its parts."""

from feedsvc.render.catalog import FeedSpec, History, build_catalog, label_spec
from feedsvc.render.context import EPOCH
from feedsvc.render.documents import FeedDocuments
from feedsvc.render.items import Item, as_of, prepare

__all__ = ["EPOCH", "FeedDocuments", "FeedSpec", "History", "Item", "as_of", "build_catalog",
           "label_spec", "prepare"]
