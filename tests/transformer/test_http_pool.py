"""The predictor hop's keep-alive HTTP/1.1 pool against real loopback servers: reuse, servers
that close, idle expiry, answers that are not HTTP, nobody listening."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from serving_common.framework.http_pool import HttpPool, HttpProtocolError
from support import free_port

Behaviour = Callable[[bytes], tuple[bytes, bool]]
"""request bytes -> (raw answer, close the connection after it)"""


def ok(body: bytes, *, close: bool = False, header_close: bool = False) -> Behaviour:
    def answer(request: bytes) -> tuple[bytes, bool]:
        extra = b"Connection: close\r\n" if header_close else b""
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
        return head + body, close or header_close

    return answer


class Server:
    """A loopback HTTP server that answers each request as ``behaviour`` says and counts connections."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = free_port()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for _ in range(100):  # bounded: one connection never serves more
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                self.requests.append(head + await reader.readexactly(length))
                answer, close = self.behaviour(self.requests[-1])
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Behaviour], asyncio.Future[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(behaviour: Behaviour) -> Server:
        server = Server(behaviour)
        servers.append(await asyncio.start_server(server.handle, "127.0.0.1", server.port))
        return server

    yield start  # type: ignore[misc]
    for s in servers:
        s.close()
        await s.wait_closed()


async def test_connections_are_kept_alive_and_reused(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(ok(b'{"outputs": []}'))
    pool = HttpPool(f"http://127.0.0.1:{server.port}")
    answers = [await pool.post("/v2/models/m/infer", {"x-request-id": f"r{i}"}, b"{}") for i in range(5)]
    assert answers == [(200, b'{"outputs": []}')] * 5
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("POST /v2/models/m/infer HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in first and "x-request-id: r0\r\n" in first
    assert first.endswith("Content-Length: 2\r\nx-request-id: r0\r\n\r\n{}")
    together = await asyncio.gather(*(pool.post("/p", {}, b"x") for _ in range(4)))
    assert [status for status, _ in together] == [200] * 4
    await pool.close()


@pytest.mark.parametrize("header_close", [True, False])
async def test_a_server_that_closes_gets_a_new_connection(
    serve: Callable[..., asyncio.Future[Server]], header_close: bool
) -> None:
    # with "Connection: close" the pool knows; without it the connection dies while idle
    server = await serve(ok(b"done", close=True, header_close=header_close))
    pool = HttpPool(f"http://127.0.0.1:{server.port}")
    for _ in range(3):
        assert await pool.post("/p", {}, b"x") == (200, b"done")
    assert server.connections == 3
    await pool.close()


async def test_idle_connections_expire(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(ok(b"y"))
    pool = HttpPool(f"http://127.0.0.1:{server.port}", keepalive=0.0)
    for _ in range(2):
        assert await pool.post("/p", {}, b"x") == (200, b"y")
    assert server.connections == 2
    await pool.close()


async def test_an_answer_that_is_not_http_is_an_error(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(lambda _: (b"SSH-2.0-OpenSSH\r\n\r\n", True))
    pool = HttpPool(f"http://127.0.0.1:{server.port}")
    with pytest.raises(HttpProtocolError, match="invalid HTTP answer"):
        await pool.post("/p", {}, b"x")


async def test_nobody_listening_is_a_connection_error() -> None:
    pool = HttpPool(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError):
        await pool.post("/p", {}, b"x")


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="expected http://HOST"):
        HttpPool("grpc://p:1")
