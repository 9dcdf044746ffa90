"""One keep-alive HTTP/1.1 connection to the logger URL that sends many POSTs per write.

The payload logger's sender thread hands :meth:`Connection.post` a list of complete requests
(from ``event_encoding``). On a connection the receiver has shown to keep alive, they go out
*pipelined* (RFC 9112 9.3.2): one ``sendall`` for the lot, then the answers are read in order;
the first request on a fresh connection goes alone, so a receiver that closes after each answer
(HTTP/1.0, ``Connection: close``) simply gets one request per connection. Requests the receiver
said it would not read (it answered ``Connection: close`` before them) are sent again on a new
connection; requests whose fate is unknown (the connection broke mid-pipeline) are reported as
failed, never sent twice. A connection idle longer than ``idle_seconds`` is replaced before use
(receivers close idle keep-alive connections; uvicorn after 5 s).

Standard library only; no per-request objects: bytes in, status codes out.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from urllib.parse import urlsplit

__all__ = ["FAILED", "Connection"]

FAILED = -1
"""The status of a request that got no answer (connect error, timeout, broken connection)."""

_CRLF2 = b"\r\n\r\n"


class _Closed(Exception):
    """The receiver closed the connection; ``answered`` answers came before."""

    def __init__(self, answered: list[int]) -> None:
        super().__init__(answered)
        self.answered = answered


class Connection:
    def __init__(self, url: str, timeout: float, idle_seconds: float = 2.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"logger url must be http:// or https://HOST..., not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self._sock: socket.socket | None = None
        self._buf = b""
        self._keeps_alive = False
        self._last_used = 0.0

    # --- public ---------------------------------------------------------------------------

    def post(self, requests: list[bytes]) -> list[int]:
        """Send ``requests``; one status per request (``FAILED`` for those without an answer)."""
        statuses: list[int] = []
        retried_stale = False
        while len(statuses) < len(requests):
            fresh = self._sock is None or time.monotonic() - self._last_used > self.idle_seconds
            if fresh:
                self.close()
                try:
                    self._connect()
                except OSError:
                    return statuses + [FAILED] * (len(requests) - len(statuses))
            done = len(statuses)
            todo = requests[done:] if self._keeps_alive else requests[done : done + 1]
            try:
                assert self._sock is not None
                self._sock.sendall(todo[0] if len(todo) == 1 else b"".join(todo))
                got, keep_alive = self._answers(len(todo))
            except _Closed as closed:
                got, keep_alive = closed.answered, False
                if not got and not fresh and not retried_stale:
                    retried_stale = True  # the receiver had closed the idle connection: send again
                    self.close()
                    continue
                if not got or (len(got) < len(todo) and self._keeps_alive):
                    # broken mid-pipeline without saying so: what it did with the rest is unknown
                    self.close()
                    return statuses + got + [FAILED] * (len(requests) - len(statuses) - len(got))
            except OSError:
                self.close()
                return statuses + [FAILED] * (len(requests) - len(statuses))
            statuses.extend(got)
            self._last_used = time.monotonic()
            self._keeps_alive = keep_alive
            if not keep_alive:
                self.close()
        return statuses

    def close(self) -> None:
        sock, self._sock, self._buf = self._sock, None, b""
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def abort(self) -> None:
        """Unblock a thread waiting in :meth:`post` (from another thread)."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # --- internals ------------------------------------------------------------------------

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self._sock = sock
        self._buf = b""
        self._last_used = time.monotonic()

    def _fill(self, answered: list[int]) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(262144)
        if not chunk:
            raise _Closed(answered)
        self._buf += chunk

    def _answers(self, n: int) -> tuple[list[int], bool]:
        """Read ``n`` answers; the statuses, and whether the connection stays open."""
        statuses: list[int] = []
        while len(statuses) < n:
            end = self._buf.find(_CRLF2)
            while end < 0:
                self._fill(statuses)
                end = self._buf.find(_CRLF2)
            head = self._buf[:end].lower()
            status = int(head[9:12])
            if 100 <= status < 200:  # interim answer: the real one follows
                self._buf = self._buf[end + 4 :]
                continue
            close = b"\r\nconnection: close" in head or (
                head.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in head
            )
            start = end + 4
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                while len(self._buf) < start + length:
                    self._fill(statuses)
                self._buf = self._buf[start + length :]
            elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                self._buf = self._buf[start:]
                self._skip_chunked(statuses)
            elif status in (204, 304) or not close:
                self._buf = self._buf[start:]
            else:  # the body runs to the end of the connection
                statuses.append(status)
                with contextlib.suppress(_Closed):
                    while True:
                        self._fill(statuses)
                return statuses, False
            statuses.append(status)
            if close:
                return statuses, False
        return statuses, True

    def _skip_chunked(self, answered: list[int]) -> None:
        while True:
            line_end = self._buf.find(b"\r\n")
            while line_end < 0:
                self._fill(answered)
                line_end = self._buf.find(b"\r\n")
            size = int(self._buf[:line_end].split(b";", 1)[0], 16)
            need = line_end + 2 + size + 2
            while len(self._buf) < need:
                self._fill(answered)
            self._buf = self._buf[need:]
            if size == 0:  # (trailers are not used by receivers we talk to)
                return
