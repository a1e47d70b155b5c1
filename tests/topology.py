"""Real server topologies for the tests, on free loopback ports in temporary folders: from
/usr/bin/redis-server a 3-primary Redis Cluster, and a primary with a replica watched by a
Sentinel (never the shared Redis on 6379); PostgreSQL clusters of their own, a primary and a
streaming replica. Every server is stopped by the fixture's finalizer."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from clocks import machine_clock_env
from conftest import free_port

REDIS_SERVER = "/usr/bin/redis-server"
POSTGRES_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                       key=lambda p: int(p.parent.name))
REDIS_CLI = "/usr/bin/redis-cli"
SERVICE = "feedsvc"


def cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def eventually(check: Callable[[], object], seconds: float, what: str) -> object:
    """`check()`'s first truthy value within `seconds` (Redis errors count as not yet)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
            if value:
                return value
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s")
        time.sleep(0.05)


class RedisServer:
    """redis-server on a loopback port (a free one unless given) with a folder of its own;
    nothing kept on disk unless `persistent` (append-only file, replayed on restart); `config`:
    the text of a config file (a sentinel's), with `{port}` filled in; `password`: its
    `requirepass`."""

    def __init__(self, folder: Path, *options: str, persistent: bool = False,
                 config: str | None = None, port: int | None = None,
                 password: str | None = None):
        assert Path(REDIS_SERVER).is_file(), f"{REDIS_SERVER} is required (apt-get install " \
                                             "redis-server)"
        self.port = port or free_port()
        self.folder = folder
        folder.mkdir(parents=True)
        head = []
        if config is not None:
            (folder / "redis.conf").write_text(config.replace("{port}", str(self.port)))
            head = [str(folder / "redis.conf")]
        self.argv = [REDIS_SERVER, *head, "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", str(folder), "--save", "",
                     "--appendonly", "yes" if persistent else "no", *options]
        if password is not None:
            self.argv += ["--requirepass", password]
        self.process: subprocess.Popen | None = None
        self.client = redis.Redis(port=self.port, socket_timeout=5, password=password)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            env=machine_clock_env())
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                assert self.process.poll() is None, f"redis-server exited: {self.log()}"
                assert time.monotonic() < deadline, "redis-server did not answer in 10 s"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file (if any) and exits (killed after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.connection_pool.disconnect()

    def log(self) -> str:
        return (self.folder / "redis.log").read_text(errors="replace")


class RedisServers:
    """redis-server processes by port, each in a folder of its own under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.servers: dict[int, RedisServer] = {}

    def start(self, *args: str, config: str | None = None, password: str | None = None) -> int:
        """A server on a free port (`config`: text of a config file, for a sentinel;
        `password`: its `requirepass`)."""
        port = cluster_port() if "--cluster-enabled" in args else free_port()
        server = RedisServer(self.root / str(port), *args, config=config, port=port,
                             password=password)
        server.start()
        self.servers[port] = server
        return port

    @staticmethod
    def client(port: int, password: str | None = None) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, decode_responses=True,
                           password=password)

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture
def redis_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServers]:
    servers = RedisServers(tmp_path_factory.mktemp("redis"))
    yield servers
    servers.stop_all()


class Cluster:
    def __init__(self, ports: list[int]):
        self.ports = ports
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)


@pytest.fixture
def redis_cluster(redis_servers: RedisServers) -> Cluster:
    """Three primaries, no replicas, the 16384 slots split between them."""
    ports = [redis_servers.start("--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                                 "--cluster-config-file", "nodes.conf") for _ in range(3)]
    created = subprocess.run(
        [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
         "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=30,
        env=machine_clock_env())
    assert created.returncode == 0, created.stdout + created.stderr
    for port in ports:
        eventually(lambda p=port: redis_servers.client(p).cluster("INFO")["cluster_state"]
                   == "ok", 15, f"cluster node {port} ready")
    return Cluster(ports)


def move_slot(slot: int, source: int, target: int) -> None:
    """Reshard one slot, its keys included, from the primary at `source` to the one at
    `target` (the steps redis-cli --cluster reshard takes)."""
    src, dst = RedisServers.client(source), RedisServers.client(target)
    src_id, dst_id = src.cluster("MYID"), dst.cluster("MYID")
    dst.cluster("SETSLOT", slot, "IMPORTING", src_id)
    src.cluster("SETSLOT", slot, "MIGRATING", dst_id)
    while keys := src.cluster("GETKEYSINSLOT", slot, 100):
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
    for node in (dst, src):
        node.cluster("SETSLOT", slot, "NODE", dst_id)


class SentinelTopology:
    """A primary, its replica, and one sentinel (quorum 1) watching them; `password`: the
    primary's and the replica's `requirepass`, `sentinel_password`: the sentinel's."""

    def __init__(self, servers: RedisServers, password: str | None = None,
                 sentinel_password: str | None = None):
        self.servers = servers
        self.password = password
        self.sentinel_password = sentinel_password
        primary = servers.start(password=password)
        auth = ["--masterauth", password] if password else []
        replica = servers.start("--replicaof", "127.0.0.1", str(primary), *auth,
                                password=password)
        eventually(lambda: self.client(replica).info("replication")["master_link_status"]
                   == "up", 15, "the replica in sync")
        self.sentinel = servers.start("--sentinel", password=sentinel_password, config=(
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            + (f"sentinel auth-pass {SERVICE} {password}\n" if password else "")))
        self.ports = (primary, replica)
        credentials = f":{password}@" if password else ""
        option = f"?sentinel_password={sentinel_password}" if sentinel_password else ""
        self.url = f"redis+sentinel://{credentials}127.0.0.1:{self.sentinel}/{SERVICE}{option}"
        eventually(self.replicas_ready, 20, "the sentinel sees the replica")

    def client(self, port: int) -> redis.Redis:
        """A client of the primary or the replica at `port`."""
        return self.servers.client(port, self.password)

    def _sentinel(self) -> redis.Redis:
        return self.servers.client(self.sentinel, self.sentinel_password)

    def primary(self) -> int:
        _host, port = self._sentinel().execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def replicas_ready(self) -> bool:
        """The sentinel knows a replica in sync with the primary (SENTINEL FAILOVER needs
        one)."""
        replicas = self._sentinel().sentinel_slaves(SERVICE)
        return [r["flags"] for r in replicas] == ["slave"]

    def failover(self) -> int:
        """Promote the replica; returns the new primary's port once the failover is over:
        the new primary takes writes and the old one replicates it. (Until the sentinel
        demotes the old primary, and cuts its clients off, clients still connected to it
        write there, and those writes are lost when it resyncs.)"""
        old = self.primary()
        eventually(self.replicas_ready, 20, "the sentinel sees the replica")
        self._sentinel().execute_command("SENTINEL", "FAILOVER", SERVICE)
        new = eventually(lambda: (p := self.primary()) != old and p, 20, "a new primary")
        eventually(lambda: self.client(new).info("replication")["role"] == "master",
                   10, "the new primary takes writes")
        eventually(lambda: self.client(old).info("replication").get("master_port")
                   == new, 20, "the old primary demoted")
        return new


@pytest.fixture
def redis_sentinel(redis_servers: RedisServers) -> SentinelTopology:
    return SentinelTopology(redis_servers)


class PostgresCluster:
    """A PostgreSQL cluster of its own: initdb (or, given a `primary`, pg_basebackup of it: a
    hot standby streaming from it) into a temporary directory owned by the `postgres` user
    (the server refuses to run as root), pg_ctl on a free loopback port."""

    def __init__(self, primary: PostgresCluster | None = None) -> None:
        assert POSTGRES_BINS, "PostgreSQL server binaries are required (apt-get install postgresql)"
        self.bin = POSTGRES_BINS[-1]
        self.port = free_port()
        # not under pytest's tmp_path: the postgres user cannot enter root's 0700 directories
        self.dir = Path(tempfile.mkdtemp(prefix="feedsvc-test-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        if primary is None:
            self._as_postgres("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U",
                              "postgres", "-E", "UTF8", "--no-sync")
        else:  # initdb's trust rules admit replication connections from loopback
            self._as_postgres("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                              "-U", "postgres", "-D", str(self.dir / "data"), "-R",
                              "-X", "stream")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, program: str, *args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
                              capture_output=True, text=True, timeout=60, env=machine_clock_env())
        assert done.returncode == 0, f"{program}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
                   "-c fsync=off -c full_page_writes=off")
        self._as_postgres("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                          "-o", options, "-w", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def wait_for_replay(self, primary: PostgresCluster, seconds: float = 20) -> None:
        """Until this standby has replayed everything `primary` has written so far (the
        tables included: before that, a query may find no table at all)."""
        with psycopg.connect(primary.url, autocommit=True) as conn:
            written = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        with psycopg.connect(self.url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                            (written,)).fetchone()[0],
                       seconds, "the standby replays the primary's writes")

    def remove(self) -> None:
        if (self.dir / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres_replication() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """A primary and a hot standby streaming from it."""
    primary = PostgresCluster()
    primary.start()
    servers = [primary]
    try:
        servers.append(PostgresCluster(primary))
        servers[-1].start()
        yield primary, servers[-1]
    finally:
        for server in reversed(servers):
            server.remove()
