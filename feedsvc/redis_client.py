"""Redis clients for the three topologies `REDIS_URL` can name, built in this one place:

- `redis://`, `rediss://`, `unix://`: one server (redis-py's own URL syntax);
- `redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db][?sentinel_password=P]`:
  the primary that Sentinel names for `service_name` (`password` is the primary's, P the
  sentinels' own when they require one); connections ask the sentinels again after a failover
  (a demoted primary's READONLY answer, or a connection it drops, sends them back);
- `redis+cluster://[:password@]host:port[,host:port...]`: a Redis Cluster, found from any of
  the listed nodes.

Every client gets the same short timeouts: the web serves its last known copy, or renders from
the store, rather than wait on an unreachable Redis.

Below both the configuration (which checks a URL's grammar) and the cache (which connects):
the redis library is loaded only to connect, so checking a configuration does not load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster

TIMEOUT = 2  # seconds, to connect and for each answer
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"

RedisClient: TypeAlias = "redis.Redis | RedisCluster"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A parsed `redis+sentinel://` or `redis+cluster://` URL."""

    scheme: str
    nodes: tuple[tuple[str, int], ...]
    password: str | None
    service: str = ""  # Sentinel only
    db: int = 0                 # Sentinel only: Cluster has database 0 alone
    sentinel_password: str | None = None  # Sentinel only: the sentinels' `requirepass`


def parse(url: str) -> Endpoints | None:
    """The endpoints of a Sentinel or Cluster URL; None for a plain redis-py URL. Raises
    ValueError naming what is wrong."""
    scheme = url.split("://", 1)[0]
    if scheme not in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return None
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            raise ValueError(f"{node!r} in {url!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    options = parse_qs(parts.query, keep_blank_values=True)
    if scheme == CLUSTER_SCHEME:
        if path or options:
            raise ValueError(f"{url!r}: a cluster URL has no path (Cluster has database 0 only)"
                             " and no options")
        return Endpoints(scheme, tuple(nodes), password or None)
    db = path[1] if len(path) == 2 else "0"
    if not 1 <= len(path) <= 2 or not (db.isascii() and db.isdigit()):
        raise ValueError(f"{url!r} must end in /service_name or /service_name/db")
    unknown = set(options) - {"sentinel_password"}
    if unknown or len(options.get("sentinel_password", ())) > 1:
        raise ValueError(f"{url!r}: the one option is sentinel_password, given once")
    return Endpoints(scheme, tuple(nodes), password or None, path[0], int(db),
                     options.get("sentinel_password", [""])[0] or None)


def connect(url: str) -> RedisClient:
    """A client for `url` (see the module's docstring); nothing is contacted yet, except a
    cluster's nodes, which are asked for the slot map."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    endpoints = parse(url)
    if endpoints is None:
        return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    if endpoints.scheme == CLUSTER_SCHEME:
        nodes = [ClusterNode(h, p) for h, p in endpoints.nodes]
        return RedisCluster(startup_nodes=nodes,
                            password=endpoints.password, socket_timeout=TIMEOUT,
                            socket_connect_timeout=TIMEOUT)
    sentinel = Sentinel(
        list(endpoints.nodes), sentinel_kwargs={
            "socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT,
            "password": endpoints.sentinel_password})
    primary: redis.Redis = sentinel.master_for(
        endpoints.service, db=endpoints.db, password=endpoints.password,
        socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    return primary


def is_cluster(client: RedisClient) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def node_for(client: RedisClient, key: str) -> redis.Redis:
    """The client of the server that holds `key`: for a cluster, the primary that owns its
    slot (after re-reading the slot map, which may have changed since the last error); else
    `client` itself."""
    from redis.cluster import RedisCluster

    if not isinstance(client, RedisCluster):
        return client
    client.nodes_manager.initialize()
    node: redis.Redis = client.get_redis_connection(
        client.get_node_from_key(key))
    return node


def owns(client: RedisClient, node: redis.Redis, key: str) -> bool:
    """Whether `node` still serves `key` (asked of the node itself: a resharding or a
    failover may have moved the slot)."""
    from redis.cluster import RedisCluster

    if not isinstance(client, RedisCluster):
        return True
    slot = client.keyslot(key)
    for start, end, primary, *_ in node.execute_command(
            "CLUSTER SLOTS"):
        if start <= slot <= end:
            kwargs = node.connection_pool.connection_kwargs
            host = primary[0].decode() if isinstance(primary[0], bytes) else primary[0]
            return (host, primary[1]) == (kwargs["host"], kwargs["port"])
    return False
