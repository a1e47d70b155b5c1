"""config/nginx/feedsvc.conf run for real, in front of a web process on this machine: used by
bench/hostile_clients.py, bench/serve.py and tests/test_nginx.py, so what they measure and
prove is the committed file with only its ports and paths replaced."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


@contextlib.contextmanager
def nginx_front(folder: Path, origin_port: int, port: int | None = None) -> Iterator[int]:
    """nginx from the committed config in `folder` (a directory of its own), in front of
    127.0.0.1:`origin_port`; yields the port it listens on, stops it on exit."""
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    config = front_config(folder, port, origin_port)
    with open(folder / "nginx.out", "wb") as out:
        process = subprocess.Popen(["nginx", "-c", str(config), "-g", "daemon off;"],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with {process.returncode}: "
                                   f"{(folder / 'nginx.out').read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {port} within 15 s")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
