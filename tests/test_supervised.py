"""Background threads outlive their failures (feedsvc.supervised), and /healthz names one whose
work is not running, over real HTTP against the real Redis: a refresh trigger that fails, a
reach flush that meets a hashing key it cannot use, a Redis that is not there."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time

import pytest
import requests

from conftest import DEMO_ARTICLES, free_port
from feedsvc.cache import RedisCache
from feedsvc.ingest.importer import Importer
from feedsvc.supervised import Supervised
from topology import eventually


def test_a_refresh_trigger_that_fails_is_logged_and_listening_goes_on(redis_client,
                                                                      redis_prefix, caplog):
    """The trigger listener caught Redis errors only: anything else its callback raised (the
    scheduler refusing the job, say) ended the thread, and no import triggered a refresh
    again until the process restarted."""
    cache = RedisCache(redis_client, redis_prefix)
    heard: list[float] = []

    def trigger() -> None:
        heard.append(time.monotonic())
        if len(heard) == 1:
            raise RuntimeError("the scheduler refused the job")

    listener = cache.listen(trigger)
    assert listener is not None
    listener.start()
    try:
        with caplog.at_level(logging.ERROR, logger="feedsvc.supervised"):
            eventually(lambda: cache.announce("import") or len(heard) >= 1, 10, "the trigger")
            eventually(lambda: cache.announce("import") or len(heard) >= 3, 10,
                       "a trigger after the failed one")
    finally:
        listener.stop()
    [failure] = [r for r in caplog.records if r.name == "feedsvc.supervised"]
    assert failure.getMessage().startswith(
        "refresh-trigger: listening for announcements stopped, starting again in")
    assert failure.exc_info is not None and "the scheduler refused" in str(failure.exc_info[1])


def _health(url: str) -> dict:
    response = requests.get(url + "/healthz", timeout=10)
    assert response.status_code == 200
    return response.json()


def test_healthz_names_a_reach_flush_that_fails_and_counting_goes_on(settings, store,
                                                                     redis_client, redis_cache,
                                                                     live_server_factory):
    """The day's hashing key in Redis is not one the flush can key BLAKE2b with (a value of
    another writer's, 100 bytes): each flush fails with ValueError. /healthz says degraded
    and names `reach-flush` while it waits to start again; once the key is gone, counting
    goes on and /healthz is ok."""
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    server = live_server_factory(dataclasses.replace(settings, reach_enabled=True,
                                                     trusted_proxies=("127.0.0.1",)),
                                 store, redis_cache)
    today = datetime.datetime.now(datetime.UTC).date()
    day_key = f"{redis_cache.prefix}reach-key:{today.isoformat()}"
    redis_client.set(day_key, b"k" * 100, ex=600)
    assert _health(server.url)["threads_down"] == []

    def poll(client: str) -> None:
        response = requests.get(server.url + "/feeds/rss.xml", timeout=10, headers={
            "User-Agent": "NetNewsWire (RSS Reader; https://netnewswire.com/)",
            "X-Forwarded-For": client})
        assert response.status_code == 200

    def health_after_poll(client: str) -> dict:
        poll(client)
        return _health(server.url)

    health = eventually(lambda: (h := health_after_poll("198.51.100.1"))["threads_down"] and h,
                        15, "reach-flush reported down")
    assert health["status"] == "degraded" and health["threads_down"] == ["reach-flush"]
    assert health["store"] and health["cache"]
    redis_client.delete(day_key)
    eventually(lambda: poll("198.51.100.2") or redis_cache.reach().day(today).pollers, 30,
               "a client counted after the failures")
    eventually(lambda: _health(server.url)["status"] == "ok", 10, "healthz ok again")


def test_healthz_names_the_invalidation_listener_when_redis_is_not_there(settings, store,
                                                                         live_server_factory):
    Importer(settings, store, progress=False).import_paths([DEMO_ARTICLES])
    unreachable = RedisCache.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="x:")
    server = live_server_factory(settings, store, unreachable)
    assert requests.get(server.url + "/feeds/rss.xml", timeout=10).status_code == 200
    health = eventually(lambda: (h := _health(server.url))["threads_down"] and h, 10,
                        "the listener reported down")
    assert health["threads_down"] == ["redis-invalidation"]
    assert health["status"] == "degraded"
    server.app.extensions["feedsvc"].cache.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_work_that_ends_without_returning_is_down_and_a_stopped_one_is_not():
    class Killed(BaseException):
        pass

    def killed() -> None:
        raise Killed  # past `except Exception`: the thread ends

    thread = Supervised("doomed", killed)
    thread.start()
    eventually(lambda: thread.down, 5, "the thread down")
    thread.stop()
    assert not thread.down
