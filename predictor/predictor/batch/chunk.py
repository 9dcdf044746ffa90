"""A chunk: consecutive input records, column by column, as the readers hand them over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Categories", "Chunk", "Column"]


@dataclass(frozen=True)
class Categories:
    """A text column, dictionary-encoded: row ``i`` holds ``values[codes[i]]`` (code -1: missing)."""

    codes: np.ndarray
    values: list[Any]

    def __getitem__(self, i: int) -> Any:
        code = int(self.codes[i])
        return None if code < 0 else self.values[code]


Column = np.ndarray | list[Any] | Categories
"""A feature's raw values: float64 with NaN for missing (numbers), distinct texts, or Python values."""


@dataclass
class Chunk:
    """Records ``start .. start + n - 1`` of the input (0-based record numbers, header excluded)."""

    start: int
    n: int
    columns: dict[str, Column]
    """Feature name -> its raw values; a feature absent from the input is absent here (missing)."""
    ids: list[Any] | None = None
    """The id column's values, when the job has one."""
    unreadable: dict[int, str] = field(default_factory=dict)
    """Index in the chunk -> why the record could not be read at all (e.g. a line that is not JSON)."""

    def record(self, i: int) -> dict[str, Any]:
        """The raw record ``i`` of the chunk (for the rejects file)."""
        out: dict[str, Any] = {}
        for name, values in self.columns.items():
            value = values[i]
            if isinstance(value, np.floating):
                value = None if np.isnan(value) else float(value)
            out[name] = value
        return out
