"""Whole lines of a text file as numpy positions: CSV is cut into chunks without a Python loop per line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BLOCK", "Lines"]

BLOCK = 1 << 22
"""Bytes read at a time."""


@dataclass(frozen=True)
class Lines:
    """Whole lines of a file: where each ends, and which of them are records (not empty)."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    """Index of each line's ``\\n``."""
    records: np.ndarray
    """Line numbers (in this block) of the records."""

    @classmethod
    def of(cls, data: bytes) -> Lines:
        raw = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(raw == 10)
        starts = np.concatenate(([0], ends[:-1] + 1))
        lengths = ends - starts
        empty = (lengths == 0) | ((lengths == 1) & (raw[np.maximum(ends - 1, 0)] == 13))
        return cls(data, starts, ends, np.flatnonzero(~empty))

    def span(self, first: int, stop: int) -> bytes:
        """The bytes of records ``first .. stop - 1`` (with any empty lines between them)."""
        return self.data[int(self.starts[self.records[first]]) : int(self.ends[self.records[stop - 1]]) + 1]
