"""What refreshes could not do, kept in the cache's state (`failing`) for /healthz and /metrics
and for the next refresh to try again.

A refresh is made of parts that fail alone: each feed's render, the site documents (OPML, index
page, addresses), dropping the archives a change alters, arming the embargo timer. One that
raises is logged in one line, counted (`feedsvc_refresh_failures_total`) and noted failing, and
the refresh goes on: the other feeds are published, the watermark moves on, and a feed that
failed keeps its documents from before (an outage never blanks a feed). Unreachable parts (the
store, the cache) and a lost lead are not a part's failure: they stop the refresh, which is
retried whole, as before.

A feed is failing until a refresh renders it (each refresh with something to publish tries
again) or it is published no more; any other part, until it next runs through.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from feedsvc.build import RenderFailed
from feedsvc.cache import LeaseLost
from feedsvc.refresh.metrics import REFRESH_FAILURES
from feedsvc.refresh.outage import OUTAGES

log = logging.getLogger(__name__)

STATE = "failing"  # the cache state's name; feedsvc.web.metrics reads it
Stage = Literal["feed", "site", "archives", "embargo"]
# Each part as its log lines name it.
_PARTS = {"feed": "feed {}", "site": "site documents", "archives": "archives",
          "embargo": "embargo timer"}
# What a failure leaves undone, said in its log line.
_LEFT = {
    "feed": "feed {} not published (its documents from before stay served)",
    "site": "site documents not published (OPML, index page and addresses from before stay "
            "served)",
    "archives": "archive {} not dropped from the cache (rendered afresh when its entry expires)",
    "embargo": "embargo timer not armed (the next interval refresh publishes what comes due)",
}


class Failures:
    """The failing parts (feeds by path, other stages by name, each with the time it began
    failing), as loaded at the start of a refresh and updated as it goes."""

    def __init__(self, state: str | None):
        try:
            raw = json.loads(state) if state else {}
            self.feeds: dict[str, float] = dict(raw.get("feeds", {}))
            self.stages: dict[str, float] = dict(raw.get("stages", {}))
        except (ValueError, AttributeError, TypeError):  # a record that cannot stop a refresh
            log.warning("unreadable refresh failures, started afresh: %r", state)
            self.feeds, self.stages = {}, {}
        self._loaded = self.to_state()
        self._failed_now: set[Stage] = set()  # stages a part of which failed in this run

    def to_state(self) -> str:
        return json.dumps({"feeds": self.feeds, "stages": self.stages}, sort_keys=True)

    @property
    def changed(self) -> bool:
        return self.to_state() != self._loaded

    @contextmanager
    def contain(self, stage: Stage, name: str = "") -> Iterator[None]:
        """Run one part of a refresh (`name`: the feed's path, or the archive's): should it
        raise, log it in one line, count it, note it failing and go on; should it run through,
        note it no longer failing (a stage: unless another of its parts failed in this run)."""
        try:
            yield
        except (*OUTAGES, LeaseLost):
            raise
        except Exception as exc:
            self._failed(stage, name, exc)
        else:
            if stage == "feed":
                self.forget_feed(name)
            else:
                self.ran(stage)

    def ran(self, stage: Stage) -> None:
        """Note `stage` run through, unless one of its parts failed just now."""
        if stage not in self._failed_now and self.stages.pop(stage, None) is not None:
            log.info("%s: failing no more", _PARTS[stage])

    def forget_feed(self, path: str) -> None:
        """Note the feed at `path` no longer failing: it rendered, or is no longer published."""
        if self.feeds.pop(path, None) is not None:
            log.info("%s: failing no more", _PARTS["feed"].format(path or "(site)"))

    def _failed(self, stage: Stage, name: str, exc: Exception) -> None:
        article = exc.article if isinstance(exc, RenderFailed) else None
        cause = exc.__cause__ if isinstance(exc, RenderFailed) else exc
        # One line: the part, what it leaves undone, the article at fault, the error itself
        # (%r: the offending value may be unprintable). The traceback only when asked for.
        log.error("%s%s: %r", _LEFT[stage].format(name or "(site)"),
                  f", article {article!r}" if article else "", cause)
        log.debug("the failure's traceback", exc_info=exc)
        REFRESH_FAILURES.labels(stage).inc()
        if stage == "feed":
            self.feeds.setdefault(name, round(time.time(), 3))
        else:
            self.stages.setdefault(stage, round(time.time(), 3))
            self._failed_now.add(stage)
