"""The store on PostgreSQL (what several replicas share): migrations, the recorder's fast insert,
label joins, windows and retention, and a second connection (a restart) seeing the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from drift_detector.feedback.store import RECORD_COLUMNS, Store
from feedback_postgres import postgres_server


def test_store_on_postgresql() -> None:
    pytest.importorskip("psycopg")
    with postgres_server() as url:
        store = Store.open(url)
        try:
            assert store.engine.dialect.name == "postgresql"
            rows = [
                (
                    "a",
                    "ce-a",
                    0,
                    "ml",
                    "risk-stable",
                    "predictor",
                    "diabetes-risk",
                    "1",
                    100.0,
                    "[1.0, null]",
                    0.8,
                    1,
                ),
                (
                    "a",
                    "ce-a",
                    1,
                    "ml",
                    "risk-stable",
                    "predictor",
                    "diabetes-risk",
                    "1",
                    100.0,
                    "[2.0, 3.0]",
                    0.2,
                    0,
                ),
                (
                    "b",
                    "ce-b",
                    0,
                    "ml",
                    "risk-canary",
                    "predictor",
                    "diabetes-risk",
                    "1",
                    101.0,
                    "[4.0, 5.0]",
                    0.6,
                    1,
                ),
            ]
            assert len(rows[0]) == len(RECORD_COLUMNS)
            store.record_many(rows)
            found = store.find(["a", "ce-b"])
            assert sorted(m.row for m in found["a"]) == [0, 1] and found["a"][0].rows == 2
            pks = {(m.prediction_id, m.row): m.pk for ms in found.values() for m in ms}
            assert store.label([(pks[("a", 1)], 0), (pks[("b", 0)], 0)], at=400.0) == 2
            assert store.label([(pks[("a", 1)], 1)], at=500.0) == 0  # first label kept
        finally:
            store.close()
        again = Store.open(url)  # a restart (or another replica): the same rows, migrations a no-op
        try:
            windows = {w.inferenceservice: w for w in again.windows(since=0.0, limit=10)}
            assert windows["risk-stable"].predictions == 2
            assert windows["risk-stable"].labels.tolist() == [0]
            assert windows["risk-canary"].delays.tolist() == [299.0]
            assert np.array_equal(windows["risk-canary"].predicted, [1])
            assert [r["features"] for r in again.labelled(0.0, inferenceservice="risk-stable")] == [
                "[2.0, 3.0]"
            ]
            assert again.purge(older_than=100.5, keep=10) == 2
            assert again.count() == 1
        finally:
            again.close()
