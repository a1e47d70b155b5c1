"""The scheduler process (and the one inside `feedsvc serve`): APScheduler jobs for the
incremental refresh, the full rebuild, the reach rollup and the leader lease, plus refreshes
triggered at once by imports and a one-shot refresh at the end of the next embargo. Only the
leader refreshes; refreshes never overlap within a process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler

from feedsvc.cache import LeaseLost
from feedsvc.cache.announce import TriggerListener
from feedsvc.cache.lease import LeaderWrites, Lease
from feedsvc.config import Settings
from feedsvc.refresh.outage import describe_outage
from feedsvc.refresh.reach import ReachRollup
from feedsvc.refresh.refresher import Refresher, RefreshKind
from feedsvc.refresh.websub import WebSubPublisher
from feedsvc.supervised import Supervised

log = logging.getLogger(__name__)
# Without Redis nothing announces an import made by another process (`feedsvc import` beside
# `feedsvc serve` on the embedded store), so the incremental refresh runs at least this often
# instead: with nothing changed it is two index lookups and the watermark, 2–3 ms on the demo
# store, 3 ms with 1,000,000 articles (bench/README.md, "incremental, nothing changed").
POLL_WITHOUT_ANNOUNCEMENTS = 2  # seconds


class RefreshService:
    """The refresh jobs around their parts, built by feedsvc.wiring: `leader` says whether
    this process refreshes; `writes` are the leader's fenced writes (None: the refresher writes
    to the cache unfenced); `listen` turns announced imports into `trigger()` calls (None where
    nothing is announced to this process, which then looks for changes every few seconds)."""

    def __init__(self, settings: Settings, scheduler: BaseScheduler, *, refresher: Refresher,
                 leader: Lease, writes: LeaderWrites | None,
                 listen: Callable[[Callable[[], None]], TriggerListener | None],
                 websub: WebSubPublisher, rollup: ReachRollup | None = None):
        self.settings = settings
        self.scheduler = scheduler
        self.refresher = refresher
        self.leader = leader
        self.writes = writes
        self.listener = listen(self.trigger)
        self.websub = websub
        self.rollup = rollup
        self._one_at_a_time = threading.Lock()
        self._executor = ThreadPoolExecutor()
        self._leading = False
        self._led_last = False  # what the lease said last, to the refresh or the renewal

    @property
    def threads(self) -> list[Supervised]:
        """Its background threads beside the scheduler's own (whose jobs APScheduler keeps
        running): the trigger listener and the WebSub publisher, where there are."""
        threads = [self.listener.thread] if self.listener else []
        return threads + ([self.websub.thread] if self.websub.thread else [])

    def start(self, *, run_now: bool = True) -> None:
        """Schedule the jobs and start; with `run_now` the first refresh runs at once."""
        s, now = self.settings, datetime.now(UTC)
        first = {"next_run_time": now} if run_now else {}
        common = {"coalesce": True, "max_instances": 1}
        every = (s.refresh_interval if self.listener
                 else min(s.refresh_interval, POLL_WITHOUT_ANNOUNCEMENTS))
        self.scheduler.add_job(self.refresh, "interval", args=["incremental"],
                               seconds=every, id="refresh", **first, **common,
                               misfire_grace_time=every)
        self.scheduler.add_job(self.refresh, "interval", args=["full"],
                               seconds=s.full_rebuild_interval, id="rebuild", **common,
                               misfire_grace_time=s.full_rebuild_interval)
        self.scheduler.add_job(self.keep_lead, "interval", seconds=max(1, s.leader_lease / 3),
                               id="leader", **common)
        if self.rollup:
            # soon after the first refresh (which finds out whether this process leads), also
            # in `feedsvc serve`: the page is there as soon as anything is
            self.scheduler.add_job(self.roll_up, "interval", seconds=s.reach_rollup_interval,
                                   id="reach", next_run_time=now + timedelta(seconds=1),
                                   **common,
                                   misfire_grace_time=s.reach_rollup_interval)
        if self.listener:
            self.listener.start()
        self.scheduler.add_executor(self._executor)  # the default: the jobs run on it
        self.scheduler.start()

    def keep_lead(self) -> None:
        """Renew the lease, or take it when its holder is gone; a new leader catches up at
        once with what changed while nobody led (and that refresh arms the embargo job)."""
        was_leading, self._leading = self._leading, self.leader.hold()
        self._led_last = self._leading
        if self._leading and not was_leading:
            self.trigger()

    def trigger(self) -> None:
        """An import committed: refresh as soon as the current refresh (if any) is done.
        Two instances may exist: one refreshing, one waiting for it (and not yet reading the
        store, so it sees every change committed before it starts); a trigger while both
        exist is covered by the waiting one, and one refreshing alone must not swallow it."""
        self.scheduler.add_job(self.refresh, args=["incremental"], id="refresh-now",
                               replace_existing=True, max_instances=2)

    def refresh(self, kind: RefreshKind) -> None:
        """One refresh, if this process leads, then the embargo timer armed. A part that fails
        (a feed, the timer) fails alone (feedsvc.refresh.failures); an outage stops the
        refresh, logged, to be retried next time: the watermark only moves after a publish, so
        nothing is skipped."""
        with self._one_at_a_time:
            self._led_last = self.leader.hold()
            if not self._led_last:
                return
            with self._leaders_job(f"{kind} refresh"):
                started = datetime.now(UTC)
                if kind == "full":
                    self.refresher.full()
                else:
                    self.refresher.incremental()
                with self.refresher.contained("embargo"):
                    self._arm_embargo(started)

    def roll_up(self) -> None:
        """The reach rollup (feedsvc.refresh.reach), if this process led when the lease was
        last held or renewed; beside the refreshes, not between them. It does not touch the
        lease itself: two threads of one process taking it at once would each see the other's
        term as another leader's. Its writes are fenced; a failure is logged, and the next run
        redoes it all."""
        if self.rollup is None or not self._led_last:
            return
        with self._leaders_job("reach rollup"):
            self.rollup.run()

    @contextmanager
    def _leaders_job(self, job: str) -> Iterator[None]:
        """A leader's job, its writes fenced: deposed midway it stops (the new leader
        publishes), and a failure is logged, an outage in one line, for the next run to
        retry."""
        if self.writes:
            self.writes.fence_now()
        try:
            yield
        except LeaseLost as exc:
            log.warning("%s stopped, nothing more published: %s", job, exc)
        except Exception as exc:
            outage = describe_outage(exc)
            if outage is None:
                log.exception("%s failed", job)
            else:
                log.error("%s failed, %s", job, outage)

    def _arm_embargo(self, since: datetime) -> None:
        """Schedule a one-shot refresh when the next embargo after `since` ends, so that an
        embargoed article appears on its second, not at the next interval refresh. Re-armed
        after every refresh: an import may bring an earlier embargo, the refresh at one
        embargo's end arms the next, and a new leader's first refresh arms it in its process.
        `since` is when the refresh began: an embargo that ended during it is due at once."""
        due = self.refresher.store.next_published_after(since)
        if due is None:
            if self.scheduler.get_job("embargo"):
                self.scheduler.remove_job("embargo")
            return
        self.scheduler.add_job(self.refresh, "date", run_date=due, args=["incremental"],
                               id="embargo", replace_existing=True, misfire_grace_time=None)

    def shutdown(self) -> None:
        """Stop the jobs, waiting for a running one to end, then give up the lead. Not
        `scheduler.shutdown(wait=True)`: APScheduler holds its job store lock while it waits,
        and a refresh ending then re-arms the embargo job, which needs that lock (a deadlock);
        the jobs' executor is waited for on its own instead."""
        if self.listener:
            self.listener.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            self._executor.shutdown(wait=True)
        self.leader.release()
        self.websub.close()
