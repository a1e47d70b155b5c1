"""The Procfile's web process (granian, two workers) against clients that hold connections
without finishing a request: idle sockets and slowloris heads are closed after the header
timeout, and while a crowd of them is held a feed reader is still answered. The full-size
attack (5,000 idle + 2,000 slowloris) is bench/hostile_clients.py."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from conftest import REDIS_URL
from feedsvc.web.__main__ import HEADER_READ_MILLISECONDS
from hostile_clients import seconds_until_closed
from processes import Service

TIMEOUT = HEADER_READ_MILLISECONDS / 1000
CROWD = 1_500  # the issue: ~1,100 idle connections locked every reader out


@pytest.fixture
def web(spawn, tmp_path, redis_prefix) -> int:
    service = Service.deploy(spawn, tmp_path, redis_url=REDIS_URL, prefix=redis_prefix,
                             database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}")
    return service.web(workers=2)


@contextlib.contextmanager
def idle_crowd(port: int, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections from 127.0.0.2 ... that send nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets: list[socket.socket] = []
    try:
        for n in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind((f"127.0.0.{2 + n % 50}", 0))
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_connections_do_not_lock_out_a_reader(web):
    with idle_crowd(web, CROWD):
        time.sleep(1)  # accepted (or queued) by now
        for _ in range(5):
            answer = requests.get(f"http://127.0.0.1:{web}/healthz", timeout=3)
            assert answer.status_code == 200


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: news.example\r\n\r\n"],
                         ids=["nothing sent", "after an answer"])
def test_an_idle_connection_is_closed_after_the_header_timeout(web, sent):
    assert TIMEOUT - 1 < seconds_until_closed(web, TIMEOUT + 5, sent) < TIMEOUT + 1.5


def test_a_head_sent_a_byte_a_second_is_cut_off_at_the_header_timeout(web):
    head = b"GET /healthz HTTP/1.1\r\nHost: news.example\r\nX-Slow: " + b"x" * 100
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", web)) as sock, \
            contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for byte in head:
            sock.sendall(bytes([byte]))
            sock.settimeout(1)
            with contextlib.suppress(TimeoutError):
                if not sock.recv(65536):
                    break
    assert TIMEOUT - 1 < time.monotonic() - start < TIMEOUT + 1.5
