"""Ingest: article files (JSON Lines, publisher page text) validated into the store."""
