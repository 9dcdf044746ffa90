"""The chunk vectoriser equals FeatureSpec.check (the one vectoriser), problems and words included."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from predictor.batch.chunk import Categories, Chunk
from predictor.batch.vectorise import vectorise
from serving_common import FeatureSpec

ODD = [None, math.nan, math.inf, -1.0, 1e9, "abc", "", True, [1], {"a": 1}, "female", "male", "other", 3, 0]
TEXT_ONLY = [None, "female", "male", "other", "", "Female"]


def _records(spec: FeatureSpec, n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        record: dict[str, Any] = {}
        for f in spec.features:
            if f.type == "categorical":
                assert f.categories is not None
                record[f.name] = rnd.choice(f.categories)
            else:
                lo = f.minimum if f.minimum is not None else 0.0
                hi = f.maximum if f.maximum is not None else 100.0
                record[f.name] = rnd.uniform(lo, hi)
        if rnd.random() < 0.3:
            record[rnd.choice(spec.names)] = rnd.choice(ODD)
        if rnd.random() < 0.05:
            del record[rnd.choice(spec.names)]
        out.append(record)
    return out


def _categories(values: list[Any]) -> Categories:
    distinct = sorted({v for v in values if v is not None})
    index = {v: i for i, v in enumerate(distinct)}
    return Categories(np.asarray([-1 if v is None else index[v] for v in values], dtype=np.int64), distinct)


def _as_chunk(spec: FeatureSpec, records: list[dict[str, Any]], start: int, numpy_numbers: bool) -> Chunk:
    """Columns as the readers make them: lists (JSON Lines), or float64 / dictionary-encoded text (Arrow)."""
    cols: dict[str, Any] = {}
    for f in spec.features:
        values = [r.get(f.name) for r in records]
        if numpy_numbers and all(type(v) is float or v is None for v in values):
            values = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
        elif numpy_numbers and all(type(v) is str or v is None for v in values):
            values = _categories(values)
        cols[f.name] = values
    return Chunk(start, len(records), cols)


def test_chunk_vectoriser_equals_the_spec_on_good_and_bad_records(spec: FeatureSpec) -> None:
    records = _records(spec, 2000, seed=7)
    expected_matrix, expected_problems = spec.check(records)
    for numpy_numbers in (False, True):
        matrix, keep, problems = vectorise(spec, _as_chunk(spec, records, 1000, numpy_numbers))
        got = sorted((p.index - 1000, p.field, p.message) for ps in problems.values() for p in ps)
        assert got == sorted((p.index, p.field, p.message) for p in expected_problems)
        bad = {p.index for p in expected_problems}
        assert 100 < len(bad) < 1000  # the data really mixes good and bad records
        assert keep.tolist() == [i for i in range(len(records)) if i not in bad]
        np.testing.assert_array_equal(matrix, expected_matrix[keep])
        # record numbers are the file's, as the transformer words them
        first = next(iter(problems.values()))[0]
        assert str(first).startswith(f"record {first.index}, field ")


def test_dictionary_encoded_text_columns_equal_the_spec(spec: FeatureSpec) -> None:
    rnd = random.Random(5)
    records: list[dict[str, Any]] = []
    for _ in range(500):  # text or nothing in the categorical columns, as Arrow reads them
        record: dict[str, Any] = {}
        for f in spec.features:
            if f.type == "categorical":
                assert f.categories is not None
                record[f.name] = rnd.choice([*f.categories, *TEXT_ONLY])
            else:
                record[f.name] = rnd.choice([None, float(f.minimum or 0) + 1.0])
        records.append(record)
    chunk = _as_chunk(spec, records, 0, numpy_numbers=True)
    assert any(isinstance(c, Categories) for c in chunk.columns.values())
    expected_matrix, expected_problems = spec.check(records)
    matrix, keep, problems = vectorise(spec, chunk)
    got = sorted((p.index, p.field, p.message) for ps in problems.values() for p in ps)
    assert got == sorted((p.index, p.field, p.message) for p in expected_problems)
    assert len(got) > 50
    np.testing.assert_array_equal(matrix, expected_matrix[keep])


def test_unreadable_records_are_problems_of_their_own(spec: FeatureSpec) -> None:
    records = _records(spec, 3, seed=1)
    chunk = _as_chunk(spec, records, 10, numpy_numbers=False)
    chunk.unreadable[1] = "the line is not valid JSON (x)"
    _, keep, problems = vectorise(spec, chunk)
    assert [str(p) for p in problems[1]] == ["record 11, field '*': the line is not valid JSON (x)"]
    assert 1 not in keep.tolist()
