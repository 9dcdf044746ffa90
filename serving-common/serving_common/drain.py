"""Drain on SIGTERM, for every component's uvicorn server (pure: no KServe / gRPC import).

Kubernetes sends SIGTERM when it starts removing a pod from its Services' endpoints; the removal
takes a moment to reach every proxy and requests keep arriving meanwhile. So the first SIGTERM (or
SIGINT) stops nothing: :class:`Drain` flips to *draining* (readiness answers 503 at once; the
component checks :attr:`Drain.draining`), inference goes on for ``drain_seconds``, and answers carry
``Connection: close`` (:class:`CloseWhileDraining`) so that no keep-alive connection is left idle
for the stop to cut. Then the callbacks run (``should_exit`` of each server, a gRPC stop) and
uvicorn stops gracefully: :class:`DrainingMixin` closes the listeners first, lets requests already
on accepted connections arrive (``LINGER_SECONDS``), and only then lets uvicorn close the idle
connections and wait for the busy ones. A second signal ends the drain period at once.

uvicorn alone stops accepting at the first signal (readiness goes from 200 to connection refused)
and re-raises the signal afterwards into whatever handler was there before (KServe's starts a
shutdown task that the closing loop never runs: "Task was destroyed but it is pending!").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import Any

__all__ = ["CloseWhileDraining", "Drain", "DrainingMixin"]

log = logging.getLogger("serving_common.drain")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
LINGER_SECONDS = 0.2
"""After the listeners close: time for requests already sent on accepted connections to arrive."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Drain:
    """One process's drain state and its stop callbacks (used on the event loop)."""

    def __init__(self, drain_seconds: float, what: str = "inference") -> None:
        self.drain_seconds = drain_seconds
        self.what = what
        self.draining = False
        """True from the first signal on: readiness answers 503 / not ready."""
        self._callbacks: list[Callable[[], None]] = []
        self._stopping: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the loop when the drain period ends."""
        self._callbacks.append(callback)

    def stopping(self) -> asyncio.Event:
        """Set when the drain period has ended (made on the running loop)."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    def begin(self, sig: int) -> None:
        """A signal arrived: start draining, or end the drain period now on a second one."""
        name = signal.Signals(sig).name
        if self.draining:
            log.warning("%s again: stopping now", name)
            self.stop()
            return
        self.draining = True
        log.warning(
            "%s: readiness answers 503; serving %s %g s more, then stopping gracefully",
            name,
            self.what,
            self.drain_seconds,
        )
        self._timer = asyncio.get_running_loop().call_later(self.drain_seconds, self.stop)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        event = self.stopping()
        if event.is_set():
            return
        event.set()
        for callback in self._callbacks:
            callback()


class DrainingMixin:
    """For a ``uvicorn.Server`` subclass: signals go to :class:`Drain`, the drain's end stops the
    server, and the stop closes listeners before connections. Set ``self.drain`` in ``__init__``
    and call :meth:`attach`."""

    drain: Drain
    should_exit: bool

    def attach(self, drain: Drain) -> None:
        self.drain = drain
        drain.on_stop(self._exit)

    def _exit(self) -> None:
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self.drain.begin, sig)
        try:
            yield
        finally:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in getattr(self, "servers", []):  # uvicorn's listening servers
            server.close()
        await asyncio.sleep(LINGER_SECONDS)
        await super().shutdown(sockets)  # type: ignore[misc]


class CloseWhileDraining:
    """ASGI: while draining, every answer says ``Connection: close`` (no idle keep-alive left)."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.draining:
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive, closing)
