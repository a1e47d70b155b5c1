"""The web process: a Flask app that serves feeds from the cache (docs/contracts.md).

`create_app` is imported on first use, not with the package: `python -m feedsvc.web` and
config/gunicorn.conf.py set PROMETHEUS_MULTIPROC_DIR before anything imports prometheus-client,
which reads it once, at import (feedsvc.web.metrics_dir)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedsvc.web.app import create_app


def __getattr__(name: str) -> object:
    if name == "create_app":
        from feedsvc.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
