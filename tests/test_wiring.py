"""Wiring lives beside the command line (feedsvc.wiring): the refresh service runs on the
parts it is given, and the web package builds no scheduler."""

from __future__ import annotations

import ast

from apscheduler.schedulers.background import BackgroundScheduler

from conftest import ROOT
from feedsvc.build import FeedBuilder
from feedsvc.cache import FeedKey, MemoryCache
from feedsvc.cache.lease import SoleLeader
from feedsvc.refresh import Refresher
from feedsvc.refresh.scheduler import RefreshService
from feedsvc.refresh.websub import WebSubPublisher

# What only the composition module may bring into the web package: the scheduler.
SCHEDULING = ("apscheduler", "feedsvc.refresh.scheduler")


class _Standby(SoleLeader):
    """A lease some other process always holds."""

    def hold(self) -> bool:
        return False


def _service(demo_renderer, cache, leader) -> RefreshService:
    renderer = FeedBuilder(demo_renderer.settings, demo_renderer.store, cache)
    return RefreshService(demo_renderer.settings, BackgroundScheduler(),
                          refresher=Refresher(renderer), leader=leader, writes=None,
                          listen=cache.listen, websub=WebSubPublisher(()))


def test_a_refresh_service_refreshes_only_under_the_lease_it_is_given(demo_renderer):
    rss = FeedKey("", "rss.xml", demo_renderer.settings.origin)
    standby_cache, leading_cache = MemoryCache(), MemoryCache()
    _service(demo_renderer, standby_cache, _Standby()).refresh("full")
    _service(demo_renderer, leading_cache, SoleLeader()).refresh("full")
    assert standby_cache.get(rss) is None
    assert leading_cache.get(rss) is not None


def test_the_web_package_builds_no_scheduler():
    imported = {}
    for path in sorted((ROOT / "feedsvc" / "web").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        names |= {node.module for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.module}
        if found := sorted(n for n in names if n.startswith(SCHEDULING)):
            imported[str(path.relative_to(ROOT))] = found
    assert imported == {}
