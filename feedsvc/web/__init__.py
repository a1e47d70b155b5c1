"""The web process: a Flask app that serves feeds from the cache (design §3, §5)."""

from feedsvc.web.app import create_app

__all__ = ["create_app"]
