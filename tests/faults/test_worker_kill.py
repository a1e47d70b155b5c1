"""A web worker process killed (SIGKILL) while readers keep requesting."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from topology import eventually

from .readers import Readers


def _workers(server_pid: int) -> set[int]:
    """The worker processes of a granian server: its children."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def _busiest(port: int, workers: set[int]) -> int:
    """The worker holding the most open client connections on `port`."""
    listing = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
    held = Counter(int(pid) for pid in re.findall(r"pid=(\d+)", listing)
                   if int(pid) in workers)
    assert held, f"no worker holds a connection: {listing}"
    return held.most_common(1)[0][0]


def test_killed_worker_is_replaced_and_readers_see_no_error(deployment, private_redis):
    """Four keep-alive readers on a two-worker granian; the worker holding most of their
    connections is SIGKILLed. A reader whose connection drops reconnects and sends its request
    once more (as any HTTP client does after a reset); no answer is an error, the server starts
    a new worker, and reading goes on."""
    deployed = deployment(private_redis(), refresh_interval=60)
    deployed.scheduler()
    deployed.wait_for_refresh()
    port = deployed.web(workers=2)
    server = deployed.webs[port]
    workers = _workers(server.pid)
    assert len(workers) == 2
    with Readers(port, threads=4, retry_dropped=True, pause=0) as readers:
        time.sleep(2)
        victim = _busiest(port, workers)
        os.kill(victim, signal.SIGKILL)
        at_kill = readers.requests
        deadline = time.monotonic() + 20
        while len(replaced := _workers(server.pid) - {victim}) < 2:
            assert time.monotonic() < deadline, f"workers now: {replaced}"
            time.sleep(0.1)
        # reading goes on: ten more answers (each is parsed and validated here, which takes a
        # busy machine seconds, so a fixed wait counted too few)
        eventually(lambda: readers.requests >= at_kill + 10, 60, "ten answers after the kill")
    readers.assert_clean(at_least=at_kill + 10)
    assert readers.retried >= 1  # the victim held connections: they were dropped
    assert server.poll() is None
