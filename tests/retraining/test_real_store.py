"""Retraining against the REAL feedback store, with real processes (issue 14 on issue 13's store).

Two predictors serving the champion log with ``--logger_url`` into one drift detector whose
feedback store is a SQLite file; each is sent the shifted population (patients the champion never
saw, following a changed rule) in multi-row requests, and the labels go back over HTTP: correct
ones for ``risk-clean``, coin flips for ``risk-noisy``. ``python -m training retrain
--feedback-url <detector> --inferenceservice <isvc>`` must accept a challenger with lineage
numbers that match what was sent for the first and reject (writing nothing) for the second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from retraining_population import Population, shifted
from serving_common import Bundle
from serving_common.bundle import content_hash
from support import REPO, VENV_DRIFT_PYTHON, PredictorProcess, ServerProcess, free_port, predictor_process

MODEL = "diabetes-risk"
N = 600
BATCH = 20


@pytest.fixture
def detector(gbm_bundle: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = ServerProcess(
        [
            "-m",
            "drift_detector",
            "--model_dir",
            str(gbm_bundle),
            "--http_port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        ready_url=f"http://127.0.0.1:{port}/ready",
        python=VENV_DRIFT_PYTHON,
        env={
            "DRIFT_BACKEND": "scipy",
            "DRIFT_FEEDBACK_DB_URL": f"sqlite:///{tmp_path / 'volume' / 'feedback.db'}",
            "DRIFT_FEEDBACK_FLUSH_SECONDS": "0.1",
            "DRIFT_QUALITY_INTERVAL_SECONDS": "3600",
        },
        log_path=tmp_path / "drift.log",
    )
    process.start()
    yield f"http://127.0.0.1:{port}"
    assert process.stop() == 0, process.output()


def recorded(client: httpx.Client, url: str) -> float:
    for line in client.get(url + "/metrics").text.splitlines():
        if line.startswith("feedback_predictions_recorded_total "):
            return float(line.split()[1])
    raise AssertionError("feedback_predictions_recorded_total not exported")


def send(client: httpx.Client, predictor: PredictorProcess, x: np.ndarray, prefix: str) -> None:
    for k in range(0, len(x), BATCH):
        rows = x[k : k + BATCH]
        body = {
            "id": f"{prefix}-{k // BATCH}",
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.ravel().tolist(),
                }
            ],
        }
        answer = client.post(predictor.infer_url, json=body)
        assert answer.status_code == 200, answer.text


def label(client: httpx.Client, url: str, pop: Population, prefix: str) -> None:
    instances = [
        {"id": f"{prefix}-{i // BATCH}", "row": i % BATCH, "label": lab} for i, lab in enumerate(pop.labels)
    ]
    answer = client.post(f"{url}/v1/models/{MODEL}:feedback", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(instances)


def retrain(url: str, isvc: str, champion: Path, bundles: Path) -> tuple[int, dict[str, object], str]:
    result = subprocess.run(
        [
            sys.executable, "-m", "training", "retrain", "--champion", str(champion),
            "--feedback-url", url, "--inferenceservice", isvc, "--bundles", str(bundles),
            "--storage-prefix", "pvc://model-bundles", "--margin", "0.02", "--resamples", "300",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, (result.stdout, result.stderr)
    return result.returncode, json.loads(lines[0]), result.stderr


def test_retrain_from_the_real_feedback_store_accepts_clean_labels_and_rejects_noise(
    gbm_bundle: Path, gbm: Bundle, detector: str, tmp_path: Path
) -> None:
    clean, noisy = shifted(N, seed=3), shifted(N, seed=3, noise=1.0)
    x = gbm.spec().vectorise(clean.records)
    predictors = {
        isvc: predictor_process(
            gbm_bundle,
            tmp_path / f"{isvc}.log",
            extra=["--logger_url", detector + "/", "--inference_service", isvc, "--namespace", "ml"],
        )
        for isvc in ("risk-clean", "risk-noisy")
    }
    started = time.time()
    try:
        for p in predictors.values():
            p.process.start()
        with httpx.Client(timeout=30) as client:
            send(client, predictors["risk-clean"], x, "c")
            send(client, predictors["risk-noisy"], x, "n")
            for _ in range(600):  # bounded (60 s): loggers send asynchronously, the store writes in batches
                if recorded(client, detector) >= 2 * N:  # rows, not requests
                    break
                time.sleep(0.1)
            assert recorded(client, detector) == 2 * N
            label(client, detector, clean, "c")
            label(client, detector, noisy, "n")
    finally:
        for p in predictors.values():
            p.process.stop()

    bundles = tmp_path / "bundles"
    code, summary, stderr = retrain(detector, "risk-clean", gbm_bundle, bundles)
    assert (code, summary["decision"]) == (0, "accepted"), (summary, stderr)
    version = str(summary["version"])
    assert version.startswith("gbm-") and summary["storage_uri"] == f"pvc://model-bundles/{version}"
    new = Bundle.open(bundles / version)
    new.verify()
    card = new.card
    assert card is not None
    ev, lineage = card["evaluation"], card["lineage"]
    holdout = round(N * 0.3)
    assert ev["decision"] == "accepted" and ev["n_holdout"] == holdout
    for metric in ("accuracy", "roc_auc"):
        assert ev["diff"][metric]["low"] > 0.05, ev["diff"][metric]
    assert lineage["parent"] == {
        **lineage["parent"],
        "version": "gbm-1",
        "content_hash": content_hash(gbm_bundle),
    }
    rows = lineage["data"]["rows"]
    assert rows["production"] == N and rows["holdout"] == holdout
    assert rows["train_production"] == N - holdout and rows["train"] == rows["original"] + N - holdout
    window = lineage["data"]["window"]
    assert started <= window["holdout_from"] <= time.time(), window
    assert summary["content_hash"] == content_hash(new.root)

    noisy_bundles = tmp_path / "noisy-bundles"
    code, summary, stderr = retrain(detector, "risk-noisy", gbm_bundle, noisy_bundles)
    assert (code, summary["decision"], summary["version"]) == (4, "rejected", None), (summary, stderr)
    assert [p.name for p in noisy_bundles.iterdir()] == ["runs"], "a rejected challenger writes no bundle"
