"""Rendering: articles from the store into feed documents, one per (feed, format, address)."""
