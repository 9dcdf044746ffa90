"""What the predictor answered for a batch of rows, read from any of its three answers (a gRPC
``ModelInferResponse``, a V2 REST JSON document, a V1 ``predictions`` document) by one parser.

Every shape problem is a :class:`~serving_common.framework.status.PredictorFailed` (502) naming
what was missing, never an ``IndexError`` turned into a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from serving_common.framework.status import PredictorFailed

__all__ = ["OUTPUT_LABEL", "OUTPUT_PROBABILITIES", "Scores", "from_grpc", "from_v1", "from_v2"]

OUTPUT_LABEL = "label"
OUTPUT_PROBABILITIES = "probabilities"

_DTYPES: dict[str, Any] = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}
_CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
}


@dataclass(frozen=True)
class Scores:
    """The predictor's answer for ``n`` rows."""

    labels: np.ndarray
    """int64 ``[n]``: class index per row."""
    probabilities: np.ndarray
    """float32 ``[n, n_classes]``."""
    model_version: str | None = None
    """The version the predictor served (``None`` when its protocol does not say)."""


def _checked(labels: np.ndarray | None, probabilities: np.ndarray, version: str | None, what: str) -> Scores:
    if probabilities.ndim != 2 or probabilities.shape[1] == 0:
        raise PredictorFailed(f"'{OUTPUT_PROBABILITIES}' from {what} has shape {list(probabilities.shape)}")
    if labels is None:
        labels = probabilities.argmax(axis=1)
    labels = labels.astype(np.int64, copy=False).reshape(-1)
    if labels.shape[0] != probabilities.shape[0]:
        raise PredictorFailed(f"{what} answered {labels.shape[0]} labels for {probabilities.shape[0]} rows")
    return Scores(labels, probabilities.astype(np.float32, copy=False), version or None)


def from_grpc(response: pb.ModelInferResponse, what: str) -> Scores:
    """Scores of a gRPC answer (``raw_output_contents`` or typed contents)."""
    arrays: dict[str, np.ndarray] = {}
    raw = response.raw_output_contents
    for i, out in enumerate(response.outputs):
        dtype = _DTYPES.get(out.datatype)
        if dtype is None:
            continue
        if raw:
            if i >= len(raw):
                raise PredictorFailed(f"{what} sent {len(raw)} raw outputs for {len(response.outputs)}")
            data = np.frombuffer(raw[i], dtype=dtype)
        else:
            data = np.asarray(getattr(out.contents, _CONTENTS[out.datatype]), dtype=dtype)
        try:
            arrays[out.name] = data.reshape(tuple(out.shape))
        except ValueError as e:
            raise PredictorFailed(f"output '{out.name}' from {what}: {e}") from e
    probabilities = arrays.get(OUTPUT_PROBABILITIES)
    if probabilities is None:
        names = [o.name for o in response.outputs]
        raise PredictorFailed(f"{what} answered without '{OUTPUT_PROBABILITIES}': {names}")
    return _checked(arrays.get(OUTPUT_LABEL), probabilities, response.model_version, what)


def from_v2(doc: Any, what: str) -> Scores:
    """Scores of a V2 REST JSON answer ``{"outputs": [{"name", "shape", "data"}, ...]}``."""
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    if not isinstance(outputs, list):
        raise PredictorFailed(f"{what} answered without 'outputs'")
    arrays: dict[str, np.ndarray] = {}
    try:
        for out in outputs:
            if out.get("name") in (OUTPUT_LABEL, OUTPUT_PROBABILITIES):
                dtype = _DTYPES.get(out.get("datatype"), np.float64)
                arrays[out["name"]] = np.asarray(out["data"], dtype=dtype).reshape(out["shape"])
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise PredictorFailed(f"{what} sent an unreadable output: {e!r}") from e
    probabilities = arrays.get(OUTPUT_PROBABILITIES)
    if probabilities is None:
        names = [o.get("name") if isinstance(o, dict) else o for o in outputs]
        raise PredictorFailed(f"{what} answered without '{OUTPUT_PROBABILITIES}': {names}")
    version = doc.get("model_version")
    return _checked(
        arrays.get(OUTPUT_LABEL), probabilities, version if isinstance(version, str) else None, what
    )


def from_v1(doc: Any, what: str) -> Scores:
    """Scores of a V1 answer: ``predictions`` of ``{"label", "probabilities"}`` or of probability rows."""
    predictions = doc.get("predictions") if isinstance(doc, dict) else None
    try:
        if not isinstance(predictions, list) or not predictions:
            raise ValueError("no 'predictions' list")
        if isinstance(predictions[0], dict):
            probabilities = np.asarray([p[OUTPUT_PROBABILITIES] for p in predictions], dtype=np.float32)
            labels: np.ndarray | None = np.asarray([p[OUTPUT_LABEL] for p in predictions], dtype=np.int64)
        else:
            probabilities, labels = np.asarray(predictions, dtype=np.float32), None
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise PredictorFailed(
            f"{what} answered without per-row '{OUTPUT_LABEL}' and '{OUTPUT_PROBABILITIES}': {e!r}"
        ) from e
    return _checked(labels, probabilities, None, what)
