"""The store on SQLite: Alembic migrations, batched records, label joins, retention, restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.runtime.migration import MigrationContext
from drift_detector.feedback.store import Store
from sqlalchemy import inspect


def prediction(pid: str, row: int = 0, at: float = 100.0, **extra: Any) -> dict[str, Any]:
    doc = {
        "prediction_id": pid,
        "event_id": f"ce-{pid}",
        "row": row,
        "namespace": "ml",
        "inferenceservice": "risk-stable",
        "component": "predictor",
        "model_name": "diabetes-risk",
        "model_version": "1",
        "predicted_at": at,
        "features": "[50.0, 1.0, null]",
        "score": 0.8,
        "predicted": 1,
    }
    doc.update(extra)
    return doc


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'volume' / 'feedback.db'}"


def test_open_migrates_to_head(url: str) -> None:
    store = Store.open(url)
    try:
        with store.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == "0001"
        columns = {c["name"] for c in inspect(store.engine).get_columns("predictions")}
        assert {"prediction_id", "event_id", "row", "features", "score", "label", "labelled_at"} <= columns
    finally:
        store.close()


def test_find_by_answer_id_or_ce_id_and_label_once(url: str) -> None:
    store = Store.open(url)
    try:
        store.record([prediction("a", 0), prediction("a", 1), prediction("b")])
        found = store.find(["a", "ce-b", "nope"])
        assert sorted(m.row for m in found["a"]) == [0, 1]
        assert {m.rows for m in found["a"]} == {2}
        assert [m.prediction_id for m in found["ce-b"]] == ["b"]
        assert "nope" not in found
        pk = found["ce-b"][0].pk
        assert store.label([(pk, 1)], at=160.0) == 1
        assert store.label([(pk, 0)], at=170.0) == 0  # the first label is kept
        labelled = store.labelled(since=0.0)
        assert [(r["prediction_id"], r["label"], r["labelled_at"], r["features"]) for r in labelled] == [
            ("b", 1, 160.0, "[50.0, 1.0, null]")
        ]
    finally:
        store.close()


def test_restart_keeps_predictions_and_labels(url: str) -> None:
    first = Store.open(url)
    first.record([prediction("kept")])
    first.close()
    again = Store.open(url)  # a new process: migrations find the schema at head and leave the rows
    try:
        pk = again.find(["kept"])["kept"][0].pk
        assert again.label([(pk, 0)], at=200.0) == 1
        (window,) = again.windows(since=0.0, limit=10)
        assert (window.inferenceservice, window.predictions, window.labels.tolist()) == (
            "risk-stable",
            1,
            [0],
        )
        assert window.delays.tolist() == [100.0]
    finally:
        again.close()


def test_retention_by_age_then_by_count(url: str) -> None:
    store = Store.open(url)
    try:
        store.record([prediction(f"p{i}", at=float(i)) for i in range(10)])
        assert store.purge(older_than=3.0, keep=100) == 3
        assert store.count() == 7
        assert store.purge(older_than=0.0, keep=4) == 3
        assert sorted(r["prediction_id"] for r in store.labelled(0.0)) == []  # none labelled
        assert set(store.find([f"p{i}" for i in range(10)])) == {"p6", "p7", "p8", "p9"}
    finally:
        store.close()


def test_windows_count_all_and_return_the_newest_labelled(url: str) -> None:
    store = Store.open(url)
    try:
        store.record(
            [prediction(f"s{i}", at=float(100 + i), score=i / 10, predicted=int(i >= 5)) for i in range(10)]
        )
        store.record([prediction("c0", inferenceservice="risk-canary")])
        matches = store.find([f"s{i}" for i in range(10)])
        store.label([(matches[f"s{i}"][0].pk, i % 2) for i in range(6)], at=500.0)
        windows = {w.inferenceservice: w for w in store.windows(since=101.0, limit=3)}
        stable = windows["risk-stable"]
        assert stable.predictions == 9  # s1..s9 made since 101
        assert stable.labels.tolist() == [1, 0, 1]  # the newest three labelled: s5, s4, s3
        assert stable.scores.tolist() == [0.5, 0.4, 0.3]
        assert "risk-canary" not in windows  # its only prediction was made before the window
    finally:
        store.close()
