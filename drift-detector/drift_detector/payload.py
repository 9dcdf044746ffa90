"""Rows and scores out of the inference bodies the payload logger carries.

Requests (the model's inputs, one row per instance):

* V1 ``{"instances": [...]}`` (or ``"inputs"``): raw records ``{"age": 59, "sex": "male", ...}``
  (a logger on the transformer; encoded with the bundle's feature spec) or encoded rows
  ``[[59.0, 1.0, ...], ...]`` (a logger on the predictor).
* V2 ``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}``: one tensor ``[n, n_features]``
  (the predictor's ``input``), or raw records as the transformer takes them (one column per
  feature, or a BYTES input ``records`` of JSON records; decoded by :mod:`serving_common.records`).

Responses (the predicted positive-class score, one per row):

* V1 ``{"predictions": [...]}`` whose items are ``{"probabilities": [p0, p1], ...}`` (our
  predictor), ``{"probabilities": {"low_risk": p0, "high_risk": p1}, ...}`` (our transformer),
  ``{"probability"|"score": p}``, ``[p0, p1]`` or a bare number.
* V2 ``{"outputs": [...]}`` with an output named ``probabilities`` (``[n, 2]``: column 1) or
  ``probability``/``score``/``scores`` (``[n]``).

Answers that are no inference (readiness ``{"name", "ready"}``, model metadata whose outputs carry
no ``data``, anything without ``predictions`` or ``outputs``) raise
:class:`~drift_detector.errors.Ignored`. NaN and infinite values are kept (the detector leaves
such rows out of the windows and counts them). Every problem raises
:class:`~drift_detector.errors.BadEvent` naming it. Documents are JSON, so objects are ``dict``
(checked as such: an ABC ``Mapping`` check is several times slower, on the hot path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from serving_common import FeatureSpec
from serving_common.records import RECORDS_INPUT, RequestInvalid, from_v2, is_records_input

from drift_detector.errors import BadEvent, Ignored

__all__ = ["Schema", "request_rows", "response_scores"]

SCORE_OUTPUTS = ("probabilities", "probability", "scores", "score", "output_probability")
SCORE_KEYS = ("probabilities", "probability", "scores", "score")
_NUMERIC = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}
)
POSITIVE = 1
"""Index of the positive class in a probabilities row (``reference_scores.npy`` holds it)."""


@dataclass(frozen=True)
class Schema:
    """What a row looks like: the feature names, and the spec to encode raw records (if any)."""

    names: tuple[str, ...]
    spec: FeatureSpec | None
    max_rows: int

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.spec.classes) if self.spec is not None else ()

    @property
    def n_features(self) -> int:
        return len(self.names)


def request_rows(data: Any, schema: Schema) -> np.ndarray:
    """The encoded rows of a V1 or V2 request body, float32 ``[n, n_features]``."""
    if not isinstance(data, dict):
        raise BadEvent(
            f"request body must be a JSON object (V1 'instances' or V2 'inputs'), not {_kind(data)}",
            reason="bad_payload",
        )
    inputs = data.get("inputs")
    if isinstance(inputs, list) and inputs and all(isinstance(i, dict) and "datatype" in i for i in inputs):
        return _v2_rows(inputs, schema)
    key = "instances" if "instances" in data else "inputs" if "inputs" in data else None
    if key is None:
        raise BadEvent(
            "request body has neither 'instances' (V1) nor 'inputs' (V2); keys: " + ", ".join(sorted(data)),
            reason="bad_payload",
        )
    instances = data[key]
    if not isinstance(instances, list) or not instances:
        raise BadEvent(f"'{key}' must be a non-empty list of instances", reason="bad_payload")
    _check_count(len(instances), schema)
    if all(isinstance(i, dict) for i in instances):
        return _records(instances, schema)
    return _matrix(instances, schema, f"'{key}'")


def response_scores(data: Any, classes: Sequence[str] = ()) -> np.ndarray:
    """The positive-class scores of a V1 or V2 response body, float32 ``[n]``.

    ``classes`` (the spec's class names) picks the positive class out of a ``probabilities``
    object keyed by class name, as the transformer answers; without it the second entry is used.
    """
    if not isinstance(data, dict):
        raise BadEvent(f"response body must be a JSON object, not {_kind(data)}", reason="bad_payload")
    outputs = data.get("outputs")
    if isinstance(outputs, list) and any(isinstance(o, dict) and "data" in o for o in outputs):
        return _v2_scores(outputs)
    if "predictions" not in data:
        keys = ", ".join(sorted(str(k) for k in data)[:8])
        raise Ignored(f"response is no inference answer (keys: {keys})", reason="not_inference")
    predictions = data["predictions"]
    if not isinstance(predictions, list) or not predictions:
        raise BadEvent("response 'predictions' must be a non-empty list", reason="bad_payload")
    return np.array([_score(p, i, classes) for i, p in enumerate(predictions)], dtype=np.float32)


# --- requests ------------------------------------------------------------------------------------


def _check_count(n: int, schema: Schema) -> None:
    if n > schema.max_rows:
        raise BadEvent(f"{n} rows in one event exceed the maximum of {schema.max_rows}", reason="bad_payload")


def _records(records: Sequence[Any], schema: Schema) -> np.ndarray:
    if schema.spec is None:
        raise BadEvent(
            "raw records need the bundle's feature_spec.json, which this model has none of; "
            "log encoded rows instead",
            reason="bad_payload",
        )
    matrix, problems = schema.spec.check(records)
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise BadEvent(f"invalid records: {shown}{more}", reason="invalid_records")
    return matrix


def _matrix(values: Any, schema: Schema, what: str, shape: Sequence[int] | None = None) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise BadEvent(f"{what} must hold numbers in rows of equal length: {e}", reason="bad_payload") from e
    if shape is not None:
        if array.size != int(np.prod(shape)):
            raise BadEvent(
                f"{what} has {array.size} values but its shape {list(shape)} needs {int(np.prod(shape))}",
                reason="bad_payload",
            )
        array = array.reshape(tuple(shape))
    if array.ndim == 1 and shape is not None and len(shape) == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise BadEvent(
            f"{what} must be rows of {schema.n_features} features (2 dimensions), "
            f"not shape {list(array.shape)}",
            reason="wrong_feature_count" if array.ndim == 1 else "bad_payload",
        )
    if array.shape[1] != schema.n_features:
        raise BadEvent(
            f"{what} rows have {array.shape[1]} features; the model has {schema.n_features} "
            f"({', '.join(schema.names)})",
            reason="wrong_feature_count",
        )
    _check_count(array.shape[0], schema)
    return array


class _Input:
    """A V2 JSON input, duck-typed as KServe's ``InferInput`` for :mod:`serving_common.records`."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.name = str(doc.get("name", ""))
        self.datatype = str(doc.get("datatype", "")).upper()
        shape = doc.get("shape")
        self.shape: list[int] = shape if isinstance(shape, list) else []
        self.parameters = doc.get("parameters") or {}
        self.data = doc.get("data")

    def as_numpy(self) -> np.ndarray:
        dtype = np.object_ if self.datatype == "BYTES" else np.float64
        data = self.data if isinstance(self.data, list) else []
        values = np.array(
            [None if v is None else v for v in np.asarray(data, dtype=np.object_).reshape(-1)], dtype=dtype
        )
        return values.reshape(self.shape) if self.shape else values


def _v2_rows(inputs: Sequence[Mapping[str, Any]], schema: Schema) -> np.ndarray:
    if len(inputs) == 1:  # the predictor's one tensor [n, n_features]: the common case, kept short
        only = inputs[0]
        shape = only.get("shape")
        if (
            only.get("name") not in schema.names
            and only.get("name") != RECORDS_INPUT
            and only.get("datatype") in _NUMERIC
            and isinstance(only.get("data"), list)
            and isinstance(shape, list)
            and all(isinstance(d, int) and d >= 0 for d in shape)
        ):
            return _matrix(only["data"], schema, f"V2 input {only.get('name')!r}", shape)
    docs = [_Input(i) for i in inputs]
    names = [d.name for d in docs]
    if len(docs) == 1 and names[0] not in schema.names and not is_records_input(docs[0]):
        tensor = docs[0]
        if tensor.datatype == "BYTES":
            raise BadEvent(f"V2 input {names[0]!r} is BYTES; expected a numeric tensor", reason="bad_payload")
        shape = inputs[0].get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadEvent(
                f"V2 input {names[0]!r} needs a 'shape' of non-negative integers", reason="bad_payload"
            )
        return _matrix(tensor.data, schema, f"V2 input {names[0]!r}", shape)
    unknown = [n for n in names if n not in schema.names and n != RECORDS_INPUT]
    if unknown and not any(is_records_input(d) for d in docs):
        raise BadEvent(
            f"V2 inputs {unknown} are not features of this model; send one tensor [n, {schema.n_features}], "
            f"one input per feature ({', '.join(schema.names)}) "
            f"or a BYTES input {RECORDS_INPUT!r} of JSON records",
            reason="wrong_feature_count",
        )
    try:
        records = from_v2(docs, schema.max_rows)
    except (RequestInvalid, TypeError, ValueError) as e:
        raise BadEvent(f"V2 raw records: {e}", reason="bad_payload") from e
    if schema.spec is None:
        return _matrix([[r.get(name) for name in schema.names] for r in records], schema, "V2 inputs")
    return _records(records, schema)


# --- responses -----------------------------------------------------------------------------------


def _score(prediction: Any, index: int, classes: Sequence[str]) -> float:
    value = prediction
    if isinstance(value, dict):
        key = next((k for k in SCORE_KEYS if k in value), None)
        if key is None:
            raise BadEvent(
                f"prediction {index} has no score; expected one of {', '.join(SCORE_KEYS)}",
                reason="bad_payload",
            )
        value = value[key]
    if isinstance(value, dict):  # {"low_risk": 0.2, "high_risk": 0.8}
        positive = classes[POSITIVE] if len(classes) > POSITIVE else None
        value = value[positive] if positive is not None and positive in value else list(value.values())
    if isinstance(value, list):
        value = value[POSITIVE] if len(value) > POSITIVE else (value[0] if value else None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadEvent(
            f"prediction {index} has no numeric score: {str(prediction)[:80]}", reason="bad_payload"
        )
    return float(value)


def _v2_scores(outputs: Sequence[Any]) -> np.ndarray:
    by_name = {str(o.get("name")): o for o in outputs if isinstance(o, dict)}
    name = next((n for n in SCORE_OUTPUTS if n in by_name), None)
    if name is None:
        raise BadEvent(
            f"V2 response has no score output; outputs: {sorted(by_name)}; expected one of "
            + ", ".join(SCORE_OUTPUTS),
            reason="bad_payload",
        )
    output = by_name[name]
    try:
        array = np.asarray(output.get("data"), dtype=np.float32)
        shape = output.get("shape") or list(array.shape)
        array = array.reshape(tuple(int(d) for d in shape))
    except (TypeError, ValueError) as e:
        raise BadEvent(
            f"V2 output {name!r} is not a numeric tensor of its shape: {e}", reason="bad_payload"
        ) from e
    if array.ndim == 2 and array.shape[1] > POSITIVE:
        array = array[:, POSITIVE]
    return array.reshape(-1)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
