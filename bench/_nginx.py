"""config/nginx/feedsvc.conf run for real, in front of a web process on this machine: used by
bench/hostile_clients.py, bench/serve.py and tests/test_nginx.py, so what they measure and
prove is the committed file with only its ports and paths replaced."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _common import stop

CONFIG = Path(__file__).resolve().parents[1] / "config" / "nginx" / "feedsvc.conf"


def front_config(folder: Path, port: int, origin_port: int) -> Path:
    """The committed config listening on 127.0.0.1:`port`, proxying to 127.0.0.1:`origin_port`,
    its pid, logs and cache in `folder` (access.log, error.log, cache/)."""
    text = CONFIG.read_text()
    for old, new in (("listen 80 ", f"listen 127.0.0.1:{port} "),
                     ("server 127.0.0.1:8000;", f"server 127.0.0.1:{origin_port};"),
                     ("/run/nginx-feedsvc.pid", f"{folder}/nginx.pid"),
                     ("/var/log/nginx/feedsvc-error.log", f"{folder}/error.log"),
                     ("/var/log/nginx/feedsvc-access.log", f"{folder}/access.log"),
                     ("/var/cache/nginx/feedsvc", f"{folder}/cache")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    folder.chmod(0o755)  # nginx's workers (www-data) create the cache in it
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Front:
    port: int     # where nginx listens, on 127.0.0.1
    folder: Path  # its config, pid, access.log, error.log and cache/


@contextlib.contextmanager
def nginx_front(origin_port: int) -> Iterator[Front]:
    """nginx from the committed config on a free port, in front of 127.0.0.1:`origin_port`,
    in a temporary directory of its own (under /tmp: nginx's workers, www-data, must reach
    it); stopped on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="feedsvc-nginx-") as name:
        folder = Path(name)
        config = front_config(folder, port, origin_port)
        with open(folder / "nginx.out", "wb") as out:
            process = subprocess.Popen(["nginx", "-c", str(config), "-g", "daemon off;"],
                                       stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for(port, process, folder)
            yield Front(port, folder)
        finally:
            stop(process)


def _wait_for(port: int, process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}: "
                               f"{(folder / 'nginx.out').read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx did not listen on {port} within 15 s")
        time.sleep(0.1)
