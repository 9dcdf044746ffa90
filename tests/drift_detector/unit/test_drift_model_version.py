"""Prediction drift only for the model the reference scores belong to (issue 12), in process.

The detector's ``reference_scores.npy`` describes the bundle's model (its card's ``version``).
A canary answering with another model must not be judged against it: its prediction rows are
left out and counted, ``/status`` says why, and its feature drift is judged as before.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from drift_detector.app import DriftService, create_app
from drift_detector.reference import Reference
from drift_detector.settings import Settings
from drift_population import Population, write_bundle
from prometheus_client.parser import text_string_to_metric_families
from serving_common import CARD_FILE
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

WINDOW = 20
BATCH = 10


def bundle(out: Path, version: str | None) -> Path:
    write_bundle(out)
    if version is not None:
        (out / CARD_FILE).write_text(json.dumps({"name": "income", "version": version}))
    return out


def test_the_reference_knows_its_model_version(tmp_path: Path) -> None:
    assert Reference.load(bundle(tmp_path / "carded", "gbm-1")).version == "gbm-1"
    assert Reference.load(bundle(tmp_path / "bare", None)).version is None


def headers(event_id: str, isvc: str, kind: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": kind,
        "ce-source": "http://localhost:9081/",
        "ce-inferenceservicename": isvc,
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "content-type": "application/json",
    }


async def exchange(
    client: httpx.AsyncClient, event_id: str, isvc: str, rows: np.ndarray, answer: dict[str, Any]
) -> None:
    for kind, body in ((REQUEST_TYPE, {"instances": rows.tolist()}), (RESPONSE_TYPE, answer)):
        r = await client.post("/", headers=headers(event_id, isvc, kind), json=body)
        assert r.status_code == 200 and r.json()["status"] == "accepted", r.text


def v1(scores: np.ndarray, version: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"predictions": [[1.0 - float(s), float(s)] for s in scores]}
    if version is not None:
        answer["model_version"] = version
    return answer


def v2(scores: np.ndarray, version: str) -> dict[str, Any]:
    data = [v for s in scores for v in (1.0 - float(s), float(s))]
    output = {"name": "probabilities", "shape": [len(scores), 2], "datatype": "FP32", "data": data}
    return {"model_name": "income", "model_version": version, "outputs": [output]}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def run(
    model_dir: Path, traffic: list[tuple[str, str | None, str, float]]
) -> tuple[dict[str, Any], str]:
    """Post ``WINDOW * 2`` rows per (isvc, model_version, protocol, score shift); /status and /metrics."""
    app = create_app(Settings(model_dir=model_dir, backend="scipy", window_size=WINDOW))
    service: DriftService = app.state.service
    await service.start()
    assert service._load_task is not None
    await service._load_task
    assert service.detector is not None, service.error
    population = Population(seed=5)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://drift"
        ) as client:
            for isvc, version, protocol, shift in traffic:
                for i in range(2 * WINDOW // BATCH):
                    scores = population.scores(BATCH, shift)
                    assert protocol == "v1" or version is not None
                    answer = v1(scores, version) if protocol == "v1" else v2(scores, version or "")
                    await exchange(client, f"{isvc}-{i}", isvc, population.rows(BATCH), answer)
            async with asyncio.timeout(30):
                await service.detector.wait_idle()
            status = (await client.get("/status")).json()
            text = (await client.get("/metrics")).text
    finally:
        await service.stop()
    return status, text


def stream(status: dict[str, Any], isvc: str) -> dict[str, Any]:
    (found,) = [s for s in status["streams"] if s["inferenceservice"] == isvc]
    return found


def labels(isvc: str, **more: str) -> frozenset[tuple[str, str]]:
    base = {
        "inferenceservice": isvc,
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    return frozenset({**base, **more}.items())


@pytest.mark.parametrize("protocol", ["v1", "v2"])
async def test_another_models_answers_are_left_out_of_the_prediction_window(
    tmp_path: Path, protocol: str
) -> None:
    model_dir = bundle(tmp_path / "gbm", "gbm-1")
    status, text = await run(
        model_dir,
        [
            ("stable", "gbm-1", protocol, 3.0),  # scores shifted: the stable model's drift is still seen
            ("canary", "mlp-1", protocol, 3.0),  # the same shift from another model: not judged
        ],
    )
    values = samples(text)
    stable, canary = stream(status, "stable"), stream(status, "canary")

    assert stable["windows_evaluated"] == {"features": 2, "prediction": 2}
    assert stable["windows_drifted"]["prediction"] == 2 and stable["prediction"]["drift"] is True
    assert stable["prediction_drift"] == "judged against reference gbm-1"
    assert stable["model_version"] == "gbm-1" and stable["prediction_rows_skipped_model_version"] == 0
    assert values[("drift_detected", labels("stable", kind="prediction"))] == 1

    assert canary["windows_evaluated"] == {"features": 2, "prediction": 0}
    assert canary["windows_drifted"]["features"] == 0 and canary["features"]["drift"] is False
    assert canary["rows_seen"] == {"features": 2 * WINDOW, "prediction": 0}
    assert canary["prediction"] is None
    assert canary["prediction_drift"] == "not applicable: model_version mlp-1, reference gbm-1"
    assert canary["model_version"] == "mlp-1"
    assert canary["prediction_rows_skipped_model_version"] == 2 * WINDOW
    skipped = labels("canary", kind="prediction", reason="model_version")
    assert values[("drift_rows_skipped_total", skipped)] == 2 * WINDOW
    assert (
        values[("drift_rows_skipped_total", labels("stable", kind="prediction", reason="model_version"))] == 0
    )
    assert ("drift_detected", labels("canary", kind="prediction")) not in values
    assert values[("drift_detected", labels("canary", kind="features"))] == 0


async def test_answers_without_a_model_version_or_a_bundle_without_one_are_judged_as_before(
    tmp_path: Path,
) -> None:
    status, _ = await run(bundle(tmp_path / "carded", "gbm-1"), [("plain", None, "v1", 3.0)])
    plain = stream(status, "plain")
    assert plain["windows_evaluated"]["prediction"] == 2 and plain["prediction"]["drift"] is True
    assert plain["model_version"] is None and plain["prediction_drift"] == "judged against reference gbm-1"

    status, _ = await run(bundle(tmp_path / "bare", None), [("any", "mlp-1", "v1", 0.0)])
    any_model = stream(status, "any")
    assert any_model["windows_evaluated"]["prediction"] == 2 and any_model["prediction"]["drift"] is False
    assert any_model["prediction_rows_skipped_model_version"] == 0
    assert any_model["prediction_drift"].startswith("judged against the bundle's reference scores")
