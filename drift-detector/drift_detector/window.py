"""Windows of rows: tumbling (disjoint) or sliding (the last ``size`` rows every ``step`` rows)."""

from __future__ import annotations

import numpy as np

__all__ = ["Window"]


class Window:
    """A ring buffer of the last ``size`` rows; :meth:`add` returns the windows that became due.

    A tumbling window is a sliding window whose step equals its size. Rows of one event that
    straddle a boundary are split across windows, so every window has exactly ``size`` rows.
    """

    def __init__(self, size: int, step: int, width: int) -> None:
        if size < 1 or not 1 <= step <= size or width < 1:
            raise ValueError("need size >= 1, 1 <= step <= size and width >= 1")
        self.size, self.step, self.width = size, step, width
        self._buf = np.empty((size, width), dtype=np.float32)
        self._filled = 0
        self._next = 0
        """Where the next row goes."""
        self._since = 0
        """Rows added since the last window was returned."""
        self.rows_seen = 0

    @property
    def buffered(self) -> int:
        """Rows that will be part of the next window (tumbling) / rows held (sliding)."""
        return self._since if self.step == self.size else self._filled

    def add(self, rows: np.ndarray) -> list[np.ndarray]:
        rows = np.asarray(rows, dtype=np.float32).reshape(len(rows), self.width)
        due: list[np.ndarray] = []
        start = 0
        while start < len(rows):
            until_due = self.size - self._filled if self._filled < self.size else 0
            until_due = max(until_due, self.step - self._since)
            chunk = rows[start : start + until_due]
            self._put(chunk)
            start += len(chunk)
            if self._filled == self.size and self._since >= self.step:
                due.append(self._ordered())
                self._since = 0
        self.rows_seen += len(rows)
        return due

    def _put(self, chunk: np.ndarray) -> None:
        for piece_start in range(0, len(chunk), self.size):
            piece = chunk[piece_start : piece_start + self.size]
            first = min(len(piece), self.size - self._next)
            self._buf[self._next : self._next + first] = piece[:first]
            rest = len(piece) - first
            if rest:
                self._buf[:rest] = piece[first:]
            self._next = (self._next + len(piece)) % self.size
            self._filled = min(self.size, self._filled + len(piece))
            self._since += len(piece)

    def _ordered(self) -> np.ndarray:
        """The buffer's rows, oldest first (a copy)."""
        return np.concatenate([self._buf[self._next :], self._buf[: self._next]]).copy()
