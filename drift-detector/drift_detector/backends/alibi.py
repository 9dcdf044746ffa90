"""The Alibi Detect backend: ``TabularDrift`` (alibi-detect 0.13, Business Source License 1.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from drift_detector.backends.base import Verdict

__all__ = ["AlibiBackend"]


class AlibiBackend:
    name = "alibi"

    def __init__(
        self,
        reference: np.ndarray,
        *,
        categorical: Sequence[int],
        p_val: float,
        correction: Literal["bonferroni", "fdr"],
    ) -> None:
        from alibi_detect.cd import TabularDrift

        reference = np.asarray(reference, dtype=np.float32).reshape(len(reference), -1)
        self.n_features = reference.shape[1]
        # {index: None}: the categories of each categorical feature are those seen in the reference
        self._detector: Any = TabularDrift(
            reference,
            p_val=p_val,
            categories_per_feature={int(i): None for i in categorical},
            correction=correction,
            alternative="two-sided",
        )

    def test(self, window: np.ndarray) -> Verdict:
        x = np.asarray(window, dtype=np.float32).reshape(len(window), -1)
        data = self._detector.predict(x, drift_type="batch", return_p_val=True, return_distance=True)["data"]
        threshold = data["threshold"]
        if isinstance(threshold, np.ndarray):  # FDR without significant features: all BH cutoffs
            threshold = float(np.min(threshold))
        return Verdict(
            drift=bool(data["is_drift"]),
            p_values=np.asarray(data["p_val"], dtype=np.float32),
            distances=np.asarray(data["distance"], dtype=np.float32),
            threshold=float(threshold),
        )
