"""The backend interface and its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

__all__ = ["Backend", "Verdict", "corrected"]


@dataclass(frozen=True)
class Verdict:
    """One window's result: per-feature p-values and distances, and the corrected decision."""

    drift: bool
    p_values: np.ndarray
    """float per feature (float32 precision, as Alibi Detect reports them)."""
    distances: np.ndarray
    """KS statistic (numeric) or chi-squared statistic (categorical) per feature."""
    threshold: float
    """p-values below this are significant after the correction."""

    @property
    def feature_drift(self) -> np.ndarray:
        return self.p_values < self.threshold


class Backend(Protocol):
    name: str
    n_features: int

    def test(self, window: np.ndarray) -> Verdict:
        """Compare ``window`` ``[n, n_features]`` with the reference."""
        ...


def corrected(
    p_values: np.ndarray, p_val: float, correction: Literal["bonferroni", "fdr"]
) -> tuple[bool, float]:
    """(drift, threshold) for the feature p-values: Bonferroni or Benjamini-Hochberg."""
    n = len(p_values)
    if correction == "bonferroni":
        threshold = p_val / n
        return bool((p_values < threshold).any()), threshold
    ranks = np.arange(1, n + 1)
    cutoffs = p_val * ranks / n
    below = np.sort(p_values) < cutoffs
    if not below.any():
        return False, float(cutoffs[0])
    return True, float(cutoffs[np.nonzero(below)[0].max()])
