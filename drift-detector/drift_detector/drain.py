"""Drain on SIGTERM: ``/ready`` answers 503 at once, events are taken for ``DRIFT_DRAIN_SECONDS``,
then uvicorn stops gracefully (requests in flight finish) and the app's shutdown decodes the queue.

uvicorn alone stops accepting at the first signal (readiness goes from 200 to connection refused)
and re-raises the signal afterwards; :class:`DrainingServer` takes SIGTERM / SIGINT on the loop
instead, and a second signal ends the drain period at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Generator

import uvicorn

__all__ = ["DrainingServer"]

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_seconds: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.on_drain = on_drain
        self.draining = False
        self._timer: asyncio.TimerHandle | None = None

    def _signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.draining:
            log.info("%s again: stopping now", name)
            self._stop()
            return
        self.draining = True
        self.on_drain()
        log.info("%s: /ready answers 503; taking events %g s more, then stopping", name, self.drain_seconds)
        self._timer = asyncio.get_running_loop().call_later(self.drain_seconds, self._stop)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self._signal, sig)
        try:
            yield
        finally:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
