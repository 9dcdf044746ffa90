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
        self._pos = 0
        self._same: tuple[bytes, int] = (b"", 0)
        self._keeps_alive = False
        self._last_used = 0.0

    # --- public ---------------------------------------------------------------------------

    def post(self, requests: list[bytes], settle: float = 0.0) -> list[int]:
        """Send ``requests``; one status per request (``FAILED`` for those without an answer).

        ``settle``: seconds to wait after a write before reading the answers, so that they are
        read with one ``recv`` rather than one per answer as they trickle in (each wake-up of
        this thread costs the serving threads a GIL hand-off)."""
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
                if settle:
                    time.sleep(settle)
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
        sock, self._sock, self._buf, self._pos = self._sock, None, b"", 0
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
        self._buf, self._pos = b"", 0
        self._last_used = time.monotonic()

    def _fill(self, answered: list[int]) -> None:
        """Read more; the consumed prefix (before ``_pos``) is dropped here, once per ``recv``."""
        assert self._sock is not None
        chunk = self._sock.recv(262144)
        if not chunk:
            raise _Closed(answered)
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0

    def _find(self, what: bytes, answered: list[int]) -> int:
        at = self._buf.find(what, self._pos)
        while at < 0:
            self._fill(answered)
            at = self._buf.find(what, self._pos)
        return at

    def _need(self, end: int, answered: list[int]) -> int:
        """Make sure ``end - _pos`` bytes past the current position are buffered; the new end."""
        want = end - self._pos
        while len(self._buf) - self._pos < want:
            self._fill(answered)
        return self._pos + want

    def _answers(self, n: int) -> tuple[list[int], bool]:
        """Read ``n`` answers; the statuses, and whether the connection stays open."""
        statuses: list[int] = []
        same, same_status = self._same
        while len(statuses) < n:
            if same and self._buf.startswith(same, self._pos):  # the receiver's usual answer again
                self._pos += len(same)
                statuses.append(same_status)
                continue
            end = self._find(_CRLF2, statuses)
            raw_head = self._buf[self._pos : end + 4]
            head = raw_head[:-4].lower()
            status = int(head[9:12])
            self._pos = end + 4
            if 100 <= status < 200:  # interim answer: the real one follows
                continue
            close = b"\r\nconnection: close" in head or (
                head.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in head
            )
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                self._pos = self._need(self._pos + length, statuses)
                if not close:  # remembered: answers are mostly byte-identical (until a Date changes)
                    same = raw_head + self._buf[self._pos - length : self._pos]
                    same_status = status
                    self._same = (same, same_status)
            elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                self._skip_chunked(statuses)
            elif not (status in (204, 304) or not close):  # the body runs to the end of the connection
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
            line_end = self._find(b"\r\n", answered)
            size = int(self._buf[self._pos : line_end].split(b";", 1)[0], 16)
            self._pos = line_end + 2
            self._pos = self._need(self._pos + size + 2, answered)
            if size == 0:  # (trailers are not used by receivers we talk to)
                return
