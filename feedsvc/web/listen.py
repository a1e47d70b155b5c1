"""Whether a server can listen on its address, asked before it starts any worker.

granian's workers bind with SO_REUSEPORT, so a second granian on a port silently shares it
with the first (each answering some of the connections), and gunicorn retries a busy port five
times with a line each. A probe bound without SO_REUSEPORT is refused by any socket listening
there, whatever its options, and turns each of these into one clear error at start.
"""

from __future__ import annotations

import socket


class CannotListen(OSError):
    """The address is in use, not ours, or not an address."""


def check_can_listen(host: str, port: int) -> None:
    """Raise CannotListen, saying why, if no server could listen on `host`:`port` now."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
            probe.bind(address)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {where}: {exc.strerror or exc}") from None
