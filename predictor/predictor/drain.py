"""Drain on SIGTERM: readiness 503 at once, serve on for the drain period, then stop gracefully.

Kubernetes sends SIGTERM when it starts removing a pod from its Service's endpoints; the removal
takes a moment to reach every proxy, and requests keep arriving meanwhile. So the first SIGTERM
(or SIGINT) does not stop anything: readiness (REST ``/v2/health/ready``, ``/v2/models/NAME/ready``,
``/v1/models/NAME``; gRPC ``ServerReady`` / ``ModelReady``) answers 503 / not ready at once, and
inference on both ports is served as before for ``PREDICTOR_DRAIN_SECONDS``. Then both servers
stop together: uvicorn stops accepting and lets requests in flight finish (``PREDICTOR_GRACE_SECONDS``),
the gRPC server refuses new calls and waits as long for the ones in flight. A second signal
skips what is left of the drain period.

uvicorn's own signal handling would stop accepting at once and then re-raise the signal into
KServe's handler, which starts a shutdown task the closing loop never runs ("Task was destroyed
but it is pending!"); :class:`DrainingServer` replaces it with the loop's signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Generator

from kserve.protocol.rest.server import _RefreshingServer

__all__ = ["Drain", "DrainingServer"]

log = logging.getLogger("predictor.drain")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drain:
    """The process's drain state, shared by the REST guard, the gRPC service and the servers."""

    def __init__(self, drain_seconds: float) -> None:
        self.drain_seconds = drain_seconds
        self.draining = False
        """True from the first signal on: readiness answers 503 / not ready."""
        self._stop_callbacks: list[Callable[[], None]] = []
        self._stopping: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the loop when the drain period ends."""
        self._stop_callbacks.append(callback)

    def stopping(self) -> asyncio.Event:
        """Set when the drain period has ended (made on the running loop)."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    def begin(self, sig: int) -> None:
        """A signal arrived (on the loop): start draining, or end the drain now on a second one."""
        name = signal.Signals(sig).name
        if self.draining:
            log.warning("%s again: stopping now", name)
            self.stop()
            return
        self.draining = True
        log.warning(
            "%s: readiness answers 503; serving %g s more, then stopping gracefully", name, self.drain_seconds
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
        for callback in self._stop_callbacks:
            callback()


class DrainingServer(_RefreshingServer):  # type: ignore[misc]
    """KServe's uvicorn server, stopped by :class:`Drain` instead of by the signal itself."""

    def __init__(self, config: object, drain: Drain) -> None:
        super().__init__(config)
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
