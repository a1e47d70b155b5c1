"""`feedsvc check-config --connect`: whether the services the configuration names answer, and
as the service needs them. One `Check` per line; the command exits 1 when any failed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis
import requests
from redis.exceptions import RedisClusterException

from feedsvc.config import Settings, redact
from feedsvc.redis_client import connect, node_for
from feedsvc.store import StoreUnavailable
from feedsvc.store.probe import NoStore, probe

HOW_TO_CREATE = ("created by the first `feedsvc import`, `feedsvc refresh` or `feedsvc "
                 "scheduler` run with the store up")
# docs/deploy.md: feed entries carry a lifetime and may go; the refresh state has none and
# must stay. Only the volatile-* policies evict just the keys with a lifetime.
RECOMMENDED_POLICY = "volatile-lru"
TIMEOUT = 5.0  # seconds, per hub


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<4} {self.name}: {self.detail}"


def checks(settings: Settings) -> Iterator[Check]:
    yield from _store("store", settings.database_url)
    if settings.replica_url:
        yield from _store("replica", settings.replica_url)
    if settings.redis_url:
        yield from _redis(settings.redis_url, settings.cache_prefix)
    else:
        yield Check("cache", True, "in-process (no REDIS_URL): for one process only")
    for hub in settings.websub_hubs:
        yield _hub(hub)


def _store(name: str, url: str) -> Iterator[Check]:
    where = redact(url)
    try:
        found = probe(url)
    except NoStore as exc:
        yield Check(name, False, f"{exc}: {HOW_TO_CREATE}")
        return
    except StoreUnavailable as exc:
        yield Check(name, False, f"{where} does not answer: {_first_line(exc)}")
        return
    yield Check(name, True, f"{found.server} at {where}")
    if name == "store":
        yield Check("tables", not found.missing_tables,
                    f"missing {', '.join(found.missing_tables)}: {HOW_TO_CREATE}"
                    if found.missing_tables else "all present")


def _redis(url: str, prefix: str) -> Iterator[Check]:
    try:
        node = node_for(connect(url), prefix)  # a cluster's: the primary of the cache's slot
        version = node.info("server")["redis_version"]
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        yield Check("redis", False, f"{redact(url)} does not answer: {_first_line(exc)}")
        return
    yield Check("redis", True, f"redis {version} at {redact(url)}")
    try:
        config = node.config_get("maxmemory*")
    except redis.RedisError as exc:  # CONFIG is often disabled on managed Redis
        yield Check("redis maxmemory-policy", True,
                    f"not readable ({_first_line(exc)}); docs/deploy.md recommends "
                    f"{RECOMMENDED_POLICY}")
        return
    policy = config.get("maxmemory-policy")
    if isinstance(policy, bytes):
        policy = policy.decode()
    if int(config.get("maxmemory") or 0) == 0:
        yield Check("redis maxmemory-policy", True, f"{policy}, with no maxmemory limit")
    elif str(policy).startswith("volatile-"):
        yield Check("redis maxmemory-policy", True, f"{policy}")
    else:
        yield Check("redis maxmemory-policy", False,
                    f"{policy} with a maxmemory limit may evict the refresh's state or refuse "
                    f"writes: docs/deploy.md recommends {RECOMMENDED_POLICY}")


def _hub(hub: str) -> Check:
    name = f"websub hub {hub}"
    try:
        answer = requests.head(hub, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return Check(name, False, f"does not answer: {_first_line(exc)}")
    answer.close()
    return Check(name, True, f"answers (HTTP {answer.status_code})")


def _first_line(exc: BaseException) -> str:
    """The root cause's message (a refused connection, not the layers wrapped around it)."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
