"""A keep-alive HTTP/1.1 connection pool to one host, for the predictor hop's REST calls.

Each connection is an asyncio protocol with httptools' response parser (the parser uvicorn
uses): a POST is one preformatted head plus the body, the answer is its status and body bytes.
Measured on the 1-row hop, aiohttp's request machinery cost about as much CPU as the
transformer's own work; this costs a few microseconds. Idle connections are reused (at most
``size`` kept) and dropped after ``keepalive`` seconds, below the server's own idle timeout, so
a pooled connection the server is about to close is not reused; a request whose reused
connection turns out closed before any answer byte is retried once on a new connection.
Failures raise :class:`ConnectionError` (cannot connect, connection lost) or
:class:`HttpProtocolError` (an answer that is not HTTP).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpPool", "HttpProtocolError"]


class HttpProtocolError(Exception):
    """The server's answer is not a valid HTTP/1.1 response."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []
        self.received = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(HttpProtocolError(f"invalid HTTP answer: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection lost{f': {exc}' if exc else ''}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body = b"".join(self.chunks)
        self.chunks = []
        if not self.parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def send(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.received = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class HttpPool:
    """Keep-alive connections to the host of ``base_url`` (``http://h:p`` or ``https://h:p``)."""

    def __init__(self, base_url: str, *, size: int = 64, keepalive: float = 4.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected http://HOST[:PORT] or https://HOST[:PORT], not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.size = size
        self.keepalive = keepalive
        self._authority = parts.netloc
        self._idle: deque[_Connection] = deque()

    def head(self, path: str, headers: dict[str, str], length: int) -> bytes:
        """The request head of a POST of ``length`` body bytes (header values must not hold CR/LF)."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._authority}", f"Content-Length: {length}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """``(status, body)`` of a POST; a cancelled or failed request's connection is closed."""
        data = self.head(path, headers, len(body)) + body
        conn, reused = self._take(), True
        if conn is None:
            conn, reused = await self._connect(), False
        while True:
            try:
                status, content = await conn.send(data)
            except ConnectionError:
                if reused and not conn.received:  # closed by the server while idle: once more, fresh
                    conn, reused = await self._connect(), False
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if not conn.closed and len(self._idle) < self.size:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            return status, content

    def _take(self) -> _Connection | None:
        limit = time.monotonic() - self.keepalive
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.idle_since > limit:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            _Connection, self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
        )
        return conn

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
