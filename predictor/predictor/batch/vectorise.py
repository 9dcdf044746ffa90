"""The feature spec's vectoriser, applied column by column to a chunk.

Every value goes through :meth:`FeatureSpec.encode_value` (the one vectoriser shared with training
and the transformer), except numbers that are plainly valid (finite and inside the feature's
range), which ``encode_value`` would return unchanged; they are taken as a numpy slice. Text
columns are encoded once per distinct value. The result equals ``FeatureSpec.check`` on the same
records (``tests/batch/test_vectorise.py`` holds it to that), problems included, except that
columns the model does not know are ignored (files carry ids, dates, ...), not rejected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from serving_common import Feature, FeatureSpec, Problem

from predictor.batch.chunk import Categories, Chunk, Column

__all__ = ["vectorise"]


def _encode_list(spec: FeatureSpec, feature: Feature, values: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
    out = np.zeros(len(values), dtype=np.float64)
    problems: dict[int, str] = {}
    cache: dict[tuple[type, Any], float | str] = {}
    for i, value in enumerate(values):
        try:
            key = (type(value), value)
            encoded = cache.get(key)
            if encoded is None:
                encoded = cache[key] = spec.encode_value(feature, value)
        except TypeError:  # unhashable (a list or object in JSON)
            encoded = spec.encode_value(feature, value)
        if isinstance(encoded, str):
            problems[i] = encoded
        else:
            out[i] = encoded
    return out, problems


def _encode_numbers(
    spec: FeatureSpec, feature: Feature, values: np.ndarray
) -> tuple[np.ndarray, dict[int, str]]:
    with np.errstate(invalid="ignore"):
        plain = np.isfinite(values)
        if feature.minimum is not None:
            plain &= values >= feature.minimum
        if feature.maximum is not None:
            plain &= values <= feature.maximum
    out = values.copy()
    problems: dict[int, str] = {}
    for i in np.flatnonzero(~plain).tolist():
        encoded = spec.encode_value(feature, float(values[i]))
        if isinstance(encoded, str):
            problems[i] = encoded
            out[i] = 0.0
        else:
            out[i] = encoded
    return out, problems


def _encode_categories(
    spec: FeatureSpec, feature: Feature, column: Categories
) -> tuple[np.ndarray, dict[int, str]]:
    """Each distinct value (and "missing") encoded once, then spread over the rows by code."""
    distinct = [*column.values, None]  # code -1 picks the last: missing
    encoded = [spec.encode_value(feature, v) for v in distinct]
    numbers = np.asarray([0.0 if isinstance(e, str) else e for e in encoded], dtype=np.float64)
    bad = np.asarray([isinstance(e, str) for e in encoded], dtype=bool)
    codes = np.where(column.codes < 0, len(distinct) - 1, column.codes)
    problems = {i: str(encoded[codes[i]]) for i in np.flatnonzero(bad[codes]).tolist()}
    return numbers[codes], problems


def _column(
    spec: FeatureSpec, feature: Feature, column: Column | None, n: int
) -> tuple[np.ndarray, dict[int, str]]:
    if column is None:
        return _encode_list(spec, feature, [None] * n)
    if isinstance(column, Categories):
        return _encode_categories(spec, feature, column)
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        return _encode_numbers(spec, feature, column.astype(np.float64, copy=False))
    values = list(column)
    if feature.type == "numeric" and all(type(v) in (int, float) for v in values):
        try:
            return _encode_numbers(spec, feature, np.asarray(values, dtype=np.float64))
        except OverflowError:  # an int beyond float64: let the vectoriser word it
            pass
    return _encode_list(spec, feature, values)


def vectorise(spec: FeatureSpec, chunk: Chunk) -> tuple[np.ndarray, np.ndarray, dict[int, list[Problem]]]:
    """``(matrix of the good records, their indices in the chunk, problems by index in the chunk)``.

    Problems carry the record's number in the input file (``chunk.start + i``), so their text reads
    ``record 1234, field 'bmi': ...`` exactly as the transformer words them.
    """
    n = chunk.n
    matrix = np.empty((n, spec.n_features), dtype=np.float32)
    problems: dict[int, list[Problem]] = {}
    for i, reason in chunk.unreadable.items():
        problems[i] = [Problem(chunk.start + i, "*", reason)]
    for j, feature in enumerate(spec.features):
        encoded, column_problems = _column(spec, feature, chunk.columns.get(feature.name), n)
        matrix[:, j] = encoded
        for i, message in column_problems.items():
            if i not in chunk.unreadable:
                problems.setdefault(i, []).append(Problem(chunk.start + i, feature.name, message))
    if not problems:
        return matrix, np.arange(n), problems
    good = np.ones(n, dtype=bool)
    good[list(problems)] = False
    keep = np.flatnonzero(good)
    return matrix[keep], keep, problems
