"""A port already in use is a start-up error, found before serving (and before the model loads).

gRPC binds with ``SO_REUSEPORT`` by default, so a second server on the same port *starts* and the
kernel splits new connections between the two. Components therefore check every port here
first, and the predictor's gRPC server is also built with ``grpc.so_reuseport`` = 0.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Mapping

from serving_common.operability.exits import ConfigError, PortInUseError

__all__ = ["check_ports", "in_use_message"]


def in_use_message(flag: str, port: int) -> str:
    """The one line of a taken port (here and wherever a server finds it taken when it binds)."""
    return (
        f"{flag} {port}: port already in use by another process; "
        "expected a free port (choose another or stop that process)"
    )


def _try_bind(port: int) -> None:
    """Binds the wildcard address like the servers do (dual stack when IPv6 is there)."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address: tuple[str, int] = ("::", port)
    except OSError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("0.0.0.0", port)
    with contextlib.closing(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1)


def check_ports(ports: Mapping[str, int | None]) -> None:
    """``{flag: port}``: each port distinct and free right now, else the error naming the flag."""
    seen: dict[int, str] = {}
    for flag, port in ports.items():
        if port is None:
            continue
        if not 0 <= port <= 65535:
            raise ConfigError(f"{flag} {port}: expected a TCP port between 1 and 65535")
        if port == 0:  # the kernel picks one
            continue
        if port in seen:
            raise ConfigError(f"{seen[port]} {port} and {flag} {port}: expected a different port for each")
        seen[port] = flag
        try:
            _try_bind(port)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUseError(in_use_message(flag, port)) from e
            if e.errno == errno.EACCES:
                raise ConfigError(
                    f"{flag} {port}: permission denied; "
                    "expected a port above 1023 (or the privilege to bind it)"
                ) from e
            raise ConfigError(f"{flag} {port}: cannot bind ({e.strerror})") from e
