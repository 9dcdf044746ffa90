"""End to end with real processes: predictors log to the detector, feedback comes back over HTTP.

The stable predictor serves the gbm bundle and the canary the weaker mlp bundle (held-out accuracy
0.74 vs 0.68), both with ``--logger_url`` into one real detector whose feedback store is a SQLite
file. The held-out records of training's split go to both, their true labels are fed back (V1 for
stable, V2 for canary) after the detector was restarted, and the live quality per
InferenceService must equal scikit-learn's on the same (label, score) pairs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from feedback_prometheus import scraping, wait_for
from rollout.analysis import QuerySet, collect, quality_checks
from rollout.prometheus import Prometheus
from serving_common import Bundle
from sklearn import metrics
from support import VENV_DRIFT_PYTHON, PredictorProcess, ServerProcess, free_port, predictor_process
from training.data import load

MODEL = "diabetes-risk"


@dataclass
class Detector:
    url: str
    port: int
    db: Path
    log: Path
    process: ServerProcess

    def restart(self) -> None:
        assert self.process.stop() == 0, self.process.output()
        self.process = detector_process(
            self.port, self.db, self.log.with_suffix(".restarted.log"), self.bundle
        )
        self.process.start()

    bundle: Path = Path()


def detector_process(port: int, db: Path, log: Path, bundle: Path) -> ServerProcess:
    return ServerProcess(
        ["-m", "drift_detector", "--model_dir", str(bundle), "--http_port", str(port), "--host", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/ready",
        python=VENV_DRIFT_PYTHON,
        env={
            "DRIFT_BACKEND": "scipy",
            "DRIFT_FEEDBACK_DB_URL": f"sqlite:///{db}",
            "DRIFT_FEEDBACK_FLUSH_SECONDS": "0.1",
            "DRIFT_QUALITY_WINDOW_SIZE": "100000",
            "DRIFT_QUALITY_INTERVAL_SECONDS": "3600",
        },
        log_path=log,
    )


@pytest.fixture(scope="module")
def detector(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detector]:
    folder = tmp_path_factory.mktemp("feedback-detector")
    port = free_port()
    db, log = folder / "volume" / "feedback.db", folder / "drift.log"
    process = detector_process(port, db, log, gbm_bundle)
    process.start()
    box = Detector(f"http://127.0.0.1:{port}", port, db, log, process, gbm_bundle)
    yield box
    assert box.process.stop() == 0, box.process.output()


def logged_predictor(bundle: Path, isvc: str, detector: Detector, folder: Path) -> PredictorProcess:
    predictor = predictor_process(
        bundle,
        folder / f"{isvc}.log",
        extra=["--logger_url", detector.url + "/", "--inference_service", isvc, "--namespace", "ml"],
    )
    predictor.process.start()
    return predictor


def infer(client: httpx.Client, predictor: PredictorProcess, rows: np.ndarray, request_id: str) -> np.ndarray:
    body = {
        "id": request_id,
        "inputs": [
            {"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}
        ],
    }
    answer = client.post(predictor.infer_url, json=body)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["id"] == request_id
    outputs = {o["name"]: o for o in doc["outputs"]}
    return np.asarray(outputs["probabilities"]["data"], dtype=np.float64).reshape(-1, 2)[:, 1]


def recorded(client: httpx.Client, detector: Detector) -> float:
    for line in client.get(detector.url + "/metrics").text.splitlines():
        if line.startswith("feedback_predictions_recorded_total "):
            return float(line.split()[1])
    raise AssertionError("feedback_predictions_recorded_total not exported")


def wait_recorded(client: httpx.Client, detector: Detector, at_least: float) -> None:
    for _ in range(600):  # bounded (60 s): the loggers send asynchronously, the store writes in batches
        if recorded(client, detector) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} predictions recorded: {recorded(client, detector)}")


def test_feedback_joins_survive_a_restart_and_quality_equals_scikit_learn(
    detector: Detector, gbm_bundle: Path, mlp_bundle: Path, tmp_path: Path
) -> None:
    split = load(seed=7)
    rows = Bundle.open(gbm_bundle).spec().vectorise(split.test_records)
    labels = split.y_test.tolist()
    classes = ["low_risk", "high_risk"]
    stable = logged_predictor(gbm_bundle, "risk-stable", detector, tmp_path)
    canary = logged_predictor(mlp_bundle, "risk-canary", detector, tmp_path)
    scores: dict[str, list[float]] = {"risk-stable": [], "risk-canary": []}
    try:
        with httpx.Client(timeout=30) as client:
            for i, row in enumerate(rows):
                scores["risk-stable"].append(float(infer(client, stable, row.reshape(1, -1), f"s-{i}")[0]))
                scores["risk-canary"].append(float(infer(client, canary, row.reshape(1, -1), f"c-{i}")[0]))
            wait_recorded(client, detector, 2 * len(rows))
            detector.restart()  # between prediction and feedback: the joins are in the store
            v1 = client.post(
                f"{detector.url}/v1/models/{MODEL}:feedback",
                json={"instances": [{"id": f"s-{i}", "label": classes[y]} for i, y in enumerate(labels)]},
            )
            assert v1.status_code == 200, v1.text
            assert v1.json()["accepted"] == len(labels)
            v2 = client.post(
                f"{detector.url}/v2/models/{MODEL}/feedback",
                json={
                    "inputs": [
                        {
                            "name": "id",
                            "datatype": "BYTES",
                            "shape": [len(labels)],
                            "data": [f"c-{i}" for i in range(len(labels))],
                        },
                        {"name": "label", "datatype": "INT64", "shape": [len(labels)], "data": labels},
                    ]
                },
            )
            assert v2.status_code == 200, v2.text
            duplicate = client.post(
                f"{detector.url}/v1/models/{MODEL}:feedback", json={"instances": [{"id": "s-0", "label": 1}]}
            )
            assert duplicate.status_code == 422
            assert duplicate.json()["results"][0]["outcome"] == "duplicate"
            quality = client.get(detector.url + "/quality", params={"refresh": "true"}).json()
    finally:
        stable.process.stop()
        canary.process.stop()
    streams = {s["inferenceservice"]: s for s in quality["streams"]}
    for isvc, got_scores in scores.items():
        got = streams[isvc]
        predicted = [int(s >= 0.5) for s in got_scores]
        assert (got["predictions"], got["labelled"], got["label_coverage"]) == (len(labels), len(labels), 1.0)
        assert got["metrics"]["accuracy"] == pytest.approx(
            metrics.accuracy_score(labels, predicted), abs=1e-9
        )
        assert got["metrics"]["recall"] == pytest.approx(metrics.recall_score(labels, predicted), abs=1e-9)
        assert got["metrics"]["f1"] == pytest.approx(metrics.f1_score(labels, predicted), abs=1e-9)
        assert got["metrics"]["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, got_scores), abs=1e-6)
        assert got["metrics"]["brier_score"] == pytest.approx(
            metrics.brier_score_loss(labels, got_scores), abs=1e-6
        )
    # the bundles' own held-out numbers, now measured live
    assert streams["risk-stable"]["metrics"]["accuracy"] == pytest.approx(
        quality["model_card"]["accuracy"], abs=1e-4
    )
    assert (
        streams["risk-canary"]["metrics"]["accuracy"] < streams["risk-stable"]["metrics"]["accuracy"] - 0.02
    )
    # the rollout's quality gate, on what a real Prometheus scraped from the detector
    prometheus, scraper = scraping(f"127.0.0.1:{detector.port}", tmp_path)
    try:
        wait_for(prometheus, "quality_labelled_predictions", 2)
        with Prometheus(prometheus) as prom:
            stable_side = collect(prom, "risk-stable", QuerySet())
            canary_side = collect(prom, "risk-canary", QuerySet())
    finally:
        assert scraper.stop() == 0, scraper.output()
    assert (stable_side.labelled, canary_side.labelled) == (len(labels), len(labels))
    assert stable_side.accuracy == pytest.approx(streams["risk-stable"]["metrics"]["accuracy"])
    assert canary_side.accuracy == pytest.approx(streams["risk-canary"]["metrics"]["accuracy"])
    held_back = quality_checks(stable_side, canary_side, max_drop=0.02, min_labelled=100)
    assert [(c.name, c.ok) for c in held_back] == [("labelled", True), ("accuracy_vs_stable", False)]
    assert all(c.ok for c in quality_checks(stable_side, stable_side, max_drop=0.02, min_labelled=100))
    too_few = quality_checks(stable_side, canary_side, max_drop=0.5, min_labelled=len(labels) + 1)
    assert [(c.name, c.ok) for c in too_few] == [("labelled", False)]


def test_ten_thousand_pairs_without_loss(detector: Detector, gbm_bundle: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    rows = Bundle.open(gbm_bundle).spec().vectorise(load(seed=7).train_records)
    bulk = logged_predictor(gbm_bundle, "risk-bulk", detector, tmp_path)
    pairs: list[dict[str, Any]] = []
    try:
        with httpx.Client(timeout=60) as client:
            before = recorded(client, detector)
            for r in range(100):
                batch = rows[rng.integers(0, len(rows), 100)]
                infer(client, bulk, batch, f"bulk-{r}")
                pairs.extend(
                    {"id": f"bulk-{r}", "row": i, "label": int(rng.integers(0, 2))} for i in range(100)
                )
            wait_recorded(client, detector, before + 10_000)
            accepted = 0
            for start in range(0, len(pairs), 2_000):
                answer = client.post(
                    f"{detector.url}/v1/models/{MODEL}:feedback",
                    json={"instances": pairs[start : start + 2_000]},
                )
                assert answer.status_code == 200, answer.text[:500]
                accepted += answer.json()["accepted"]
            quality = client.get(detector.url + "/quality", params={"refresh": "true"}).json()
    finally:
        bulk.process.stop()
    assert accepted == 10_000
    (stream,) = [s for s in quality["streams"] if s["inferenceservice"] == "risk-bulk"]
    assert (stream["predictions"], stream["labelled"]) == (10_000, 10_000)
