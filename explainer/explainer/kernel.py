"""Kernel SHAP (the ``shap`` library) with the predictor as the model.

The background is the bundle's reference sample summarised by k-means (``shap.kmeans``: fixed
``random_state``, centres snapped to values that occur in the data, so categories stay valid
codes), weighted by cluster size. For one record SHAP evaluates the model once on the record and
once on all its perturbation samples (coalitions x background rows) in a single batch, which
the client sends in as few requests as the predictor's row limit allows. With at most 11
varying features every coalition is evaluated: the attributions are exact Shapley values of
the model against the background, with no sampling at all; past that, sampling is seeded.
By construction ``base_value + sum(attributions) == output``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Attribution", "KernelShap", "ModelFunction"]

ModelFunction = Callable[[np.ndarray], np.ndarray]
"""Rows (float ``[n, n_features]``) -> the explained probability of each row (``[n]``)."""

logging.getLogger("shap").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Attribution:
    values: np.ndarray
    """float64 ``[n_features]``: each feature's contribution."""
    base_value: float
    """The model's expected output over the background."""
    output: float
    """The model's output for the record: ``base_value + values.sum()``."""


class KernelShap:
    """One explainer per process; explanations run one at a time (SHAP keeps per-call state)."""

    def __init__(
        self, reference: np.ndarray, *, background_size: int, nsamples: int | None, seed: int
    ) -> None:
        import shap

        reference = np.asarray(reference, dtype=np.float64)
        # k-means centres weighted by cluster size, or the whole (small) sample, equally weighted
        self.background: Any = (
            shap.kmeans(reference, background_size) if background_size < len(reference) else reference
        )
        self.nsamples = nsamples
        self.seed = seed
        self._explainer: Any = None
        self._model: ModelFunction | None = None
        self._lock = threading.Lock()

    @property
    def background_rows(self) -> int:
        data = self.background if isinstance(self.background, np.ndarray) else self.background.data
        return int(data.shape[0])

    def _f(self, rows: np.ndarray) -> np.ndarray:
        assert self._model is not None
        return self._model(np.asarray(rows, dtype=np.float32))

    def explain(self, row: np.ndarray, model: ModelFunction) -> Attribution:
        """Attributions for one encoded record; ``model`` calls the predictor."""
        import shap

        with self._lock:
            self._model = model
            try:
                if self._explainer is None:  # evaluates the background once (needs the predictor)
                    self._explainer = shap.KernelExplainer(self._f, self.background)
                np.random.seed(self.seed)  # SHAP samples coalitions with numpy's global generator
                values = self._explainer.shap_values(
                    np.asarray(row, dtype=np.float64).reshape(1, -1),
                    nsamples=self.nsamples if self.nsamples is not None else "auto",
                    l1_reg=False,
                    silent=True,
                )
                base = float(self._explainer.expected_value)
                output = float(np.asarray(self._explainer.fx).reshape(-1)[0])
            finally:
                self._model = None
        return Attribution(
            values=np.asarray(values, dtype=np.float64).reshape(-1), base_value=base, output=output
        )
