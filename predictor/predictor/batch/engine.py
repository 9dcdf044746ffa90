"""Engines: what turns a vectorised matrix into labels and probabilities.

One interface, two kinds: :class:`OnnxEngine` runs the bundle's model in this process (the
default: fastest, no server); ``predictor.batch.remote.V2Engine`` calls a running predictor
(InferenceService) over the V2 protocol.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import onnxruntime as ort
from serving_common import Bundle

from predictor.batch.errors import ModelUnusable

__all__ = ["LABEL_OUTPUT", "PROBABILITIES_OUTPUT", "Engine", "OnnxEngine", "Scores"]

LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"


class Scores(NamedTuple):
    labels: np.ndarray
    """int64 ``[n]``: class index."""
    probabilities: np.ndarray
    """float32 ``[n, n_classes]``."""


class Engine(Protocol):
    """Scores vectorised rows in the order given."""

    @property
    def model_version(self) -> str:
        """The version written beside every prediction."""
        ...

    def score(self, matrix: np.ndarray) -> Scores: ...

    def close(self) -> None: ...


def concat(parts: list[Scores]) -> Scores:
    if len(parts) == 1:
        return parts[0]
    return Scores(np.concatenate([p.labels for p in parts]), np.concatenate([p.probabilities for p in parts]))


class OnnxEngine:
    """onnxruntime on the bundle's ``model.onnx``, ``batch_rows`` rows per ``session.run``."""

    def __init__(self, bundle: Bundle, batch_rows: int, intra_op_threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(bundle.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelUnusable(f"onnxruntime cannot load {bundle.model_path}: {e}") from e
        outputs = [o.name for o in self._session.get_outputs()]
        if LABEL_OUTPUT not in outputs or PROBABILITIES_OUTPUT not in outputs:
            raise ModelUnusable(
                f"{bundle.model_path} has outputs {outputs}; batch scoring needs "
                f"{LABEL_OUTPUT!r} and {PROBABILITIES_OUTPUT!r}"
            )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [LABEL_OUTPUT, PROBABILITIES_OUTPUT]
        self._batch_rows = batch_rows
        self._version = bundle.version or "unversioned"

    @property
    def model_version(self) -> str:
        return self._version

    def score(self, matrix: np.ndarray) -> Scores:
        parts = []
        for lo in range(0, len(matrix), self._batch_rows):
            labels, probabilities = self._session.run(
                self._outputs, {self._input: matrix[lo : lo + self._batch_rows]}
            )
            parts.append(Scores(np.asarray(labels, dtype=np.int64), np.asarray(probabilities)))
        if not parts:
            return Scores(np.empty(0, dtype=np.int64), np.empty((0, 2), dtype=np.float32))
        return concat(parts)

    def close(self) -> None:
        pass
