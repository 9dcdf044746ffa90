"""The scipy.stats backend (BSD-3-Clause): KS and chi-squared per feature, no Alibi Detect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.stats import chi2_contingency, ks_2samp

from drift_detector.backends.base import Verdict, corrected

__all__ = ["ScipyBackend"]


class ScipyBackend:
    name = "scipy"

    def __init__(
        self,
        reference: np.ndarray,
        *,
        categorical: Sequence[int],
        p_val: float,
        correction: Literal["bonferroni", "fdr"],
    ) -> None:
        self.reference = np.asarray(reference, dtype=np.float32).reshape(len(reference), -1)
        self.n_features = self.reference.shape[1]
        self.categorical = {int(i): np.unique(self.reference[:, i]) for i in categorical}
        self.p_val = p_val
        self.correction = correction

    def test(self, window: np.ndarray) -> Verdict:
        x = np.asarray(window, dtype=np.float32).reshape(len(window), -1)
        p_values = np.zeros(self.n_features, dtype=np.float32)
        distances = np.zeros_like(p_values)
        for f in range(self.n_features):
            if f in self.categorical:
                categories = np.union1d(self.categorical[f], np.unique(x[:, f]))
                table = np.vstack(
                    [
                        [(self.reference[:, f] == c).sum() for c in categories],
                        [(x[:, f] == c).sum() for c in categories],
                    ]
                )
                result = chi2_contingency(table)
                distances[f], p_values[f] = result.statistic, result.pvalue
            else:
                result = ks_2samp(self.reference[:, f], x[:, f], alternative="two-sided", method="asymp")
                distances[f], p_values[f] = result.statistic, result.pvalue
        drift, threshold = corrected(p_values, self.p_val, self.correction)
        return Verdict(drift=drift, p_values=p_values, distances=distances, threshold=threshold)
