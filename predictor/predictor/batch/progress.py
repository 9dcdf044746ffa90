"""Progress on stderr: a tqdm bar (rows, rows/s, ETA) on a terminal, else a log line a minute."""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal

from tqdm import tqdm

__all__ = ["Progress"]

log = logging.getLogger("predictor.batch")
_LOG_EVERY_SECONDS = 60.0


class Progress:
    def __init__(self, total: int, done: int, mode: Literal["auto", "always", "never"]) -> None:
        show = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self.total = total
        self.done = done
        self._started = time.monotonic()
        self._initial = done
        self._last_log = self._started
        self._bar: tqdm[None] | None = (
            tqdm(total=total, initial=done, unit="rows", unit_scale=True, file=sys.stderr, smoothing=0.1)
            if show
            else None
        )

    def update(self, rows: int) -> None:
        self.done += rows
        if self._bar is not None:
            self._bar.update(rows)
            return
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            rate = self.rate()
            eta = (self.total - self.done) / rate if rate else float("inf")
            log.info("%d/%d rows, %.0f rows/s, ETA %.0f s", self.done, self.total, rate, eta)

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return (self.done - self._initial) / elapsed if elapsed > 0 else 0.0

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
