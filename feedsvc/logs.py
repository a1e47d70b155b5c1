"""One log format for every process: the `feedsvc` commands, the scheduler, granian's main
process and workers (`python -m feedsvc.web`) and gunicorn (`feedsvc serve`,
config/gunicorn.conf.py). Each line has the time, the level, the logger and the message;
`FEEDSVC_LOG_FORMAT=json` makes each line one JSON object with those four keys (`time`,
`level`, `logger`, `message`, and `exception` when there is one), for log shippers.

The servers' own loggers (granian's `_granian` and `granian.access`, gunicorn's `gunicorn.error`
and `gunicorn.access`) are given no handler of their own and pass their records to the root
logger's, so they cannot drift into a format of their own.
"""

from __future__ import annotations

import logging.config
import os
from collections.abc import Mapping
from typing import Any

FORMAT_VARIABLE = "FEEDSVC_LOG_FORMAT"
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_JSON_KEYS = {"asctime": "time", "levelname": "level", "name": "logger",
              "exc_info": "exception"}
_SERVER_LOGGERS = ("_granian", "granian.access", "gunicorn.error", "gunicorn.access")


class LogFormatError(ValueError):
    """FEEDSVC_LOG_FORMAT names no format."""


def _formatter(environ: Mapping[str, str]) -> dict[str, Any]:
    chosen = environ.get(FORMAT_VARIABLE, "text") or "text"
    if chosen == "text":
        return {"format": TEXT}
    if chosen == "json":
        return {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": _JSON_FIELDS,
                "rename_fields": _JSON_KEYS}
    raise LogFormatError(f"{FORMAT_VARIABLE}={chosen!r}: must be text or json")


def log_config(level: str = "INFO", environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping: every record to stderr in the chosen format.
    Plain data, so granian can hand it to its worker processes."""
    formatter = _formatter(os.environ if environ is None else environ)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"feedsvc": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "feedsvc",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in _SERVER_LOGGERS},
            "apscheduler": {"level": "WARNING"},  # not every job run
        },
    }


def configure(level: str = "INFO") -> None:
    """Set up logging for this process (raises LogFormatError for an unknown format)."""
    logging.config.dictConfig(log_config(level))
