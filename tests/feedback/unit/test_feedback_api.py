"""The feedback API in process (ASGI): events in, pairs fed back, per-pair outcomes, live quality."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from drift_detector.app import DriftService, create_app
from drift_detector.settings import Settings
from feedback_bundle import CARD, ce_headers, rows, v2_request, v2_response
from sklearn import metrics

MODEL = "diabetes-risk"


class Client:
    def __init__(self, http: httpx.AsyncClient, service: DriftService) -> None:
        self.http = http
        self.service = service

    async def exchange(
        self,
        event_id: str,
        values: np.ndarray,
        scores: np.ndarray,
        isvc: str = "risk-stable",
        answer_first: bool = False,
        component: str = "predictor",
    ) -> None:
        """One logged exchange: request and response events (either order), answer id = ``event_id``."""
        request = (ce_headers(event_id, "request", isvc, component), json.dumps(v2_request(values, event_id)))
        response = (
            ce_headers(event_id, "response", isvc, component),
            json.dumps(v2_response(scores, event_id)),
        )
        for headers, body in (response, request) if answer_first else (request, response):
            answer = await self.http.post("/", headers=headers, content=body)
            assert answer.status_code == 200, answer.text

    async def feedback(self, pairs: list[dict[str, Any]], model: str = MODEL) -> httpx.Response:
        return await self.http.post(f"/v1/models/{model}:feedback", json={"instances": pairs})


@pytest.fixture()
async def client(feedback_bundle: Path, tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(
        model_dir=feedback_bundle,
        backend="scipy",
        feedback_db_url=f"sqlite:///{tmp_path / 'feedback.db'}",
        feedback_flush_seconds=0.05,
        quality_interval_seconds=3600,
    )
    app = create_app(settings)
    service: DriftService = app.state.service
    await service.start()
    assert service._load_task is not None
    await service._load_task
    assert service.error is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drift") as http:
        yield Client(http, service)
    await service.stop()


async def test_every_pair_gets_its_outcome_and_the_good_ones_are_kept(client: Client) -> None:
    rng = np.random.default_rng(1)
    await client.exchange("one", rows(rng, 1), np.array([0.9]))
    await client.exchange("two", rows(rng, 1), np.array([0.2]), answer_first=True)
    await client.exchange("batch", rows(rng, 3), np.array([0.1, 0.6, 0.7]))
    answer = await client.feedback(
        [
            {"id": "one", "label": "high_risk"},
            {"id": "ghost", "label": 1},
            {"id": "two", "label": "maybe"},
            {"id": "two", "label": False},
            {"id": "one", "label": 0},
            {"id": "batch", "label": 1},
            {"id": "batch", "label": 1, "row": 2},
            {"id": "batch", "label": 1, "row": 7},
            {"label": 1},
        ]
    )
    assert answer.status_code == 422
    body = answer.json()
    outcomes = [(r["index"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (0, "accepted"),
        (1, "unknown_id"),
        (2, "unknown_label"),
        (3, "accepted"),
        (4, "duplicate"),
        (5, "bad_row"),
        (6, "accepted"),
        (7, "bad_row"),
        (8, "malformed"),
    ]
    assert (body["accepted"], body["rejected"]) == (3, 6)
    errors = {r["index"]: r.get("error", "") for r in body["results"]}
    assert "pair 1 (id 'ghost'): no prediction has this id" in errors[1]
    assert "label 'maybe' is not a class of this model; expected one of 'low_risk', 'high_risk'" in errors[2]
    assert "already has a label ('high_risk')" in errors[4]
    assert "the request had 3 rows; give 'row' (0..2)" in errors[5]
    assert "row 7 does not exist" in errors[7]
    assert "'id' must be a non-empty string" in errors[8]
    assert body["error"].startswith("pair 1 (id 'ghost')") and "(and 5 more refused pair(s))" in body["error"]
    assert client.service.feedback is not None and client.service.feedback.store is not None
    labelled = client.service.feedback.store.labelled(since=0.0)
    assert sorted((r["prediction_id"], r["row"], r["label"]) for r in labelled) == [
        ("batch", 2, 1),
        ("one", 0, 1),
        ("two", 0, 0),
    ]
    again = await client.feedback([{"id": "two", "label": "low_risk"}])
    assert again.status_code == 422 and again.json()["results"][0]["outcome"] == "duplicate"
    exposition = (await client.http.get("/metrics")).text
    assert 'feedback_pairs_total{outcome="accepted"} 3.0' in exposition
    assert 'feedback_pairs_total{outcome="duplicate"} 2.0' in exposition


async def test_v2_shape_and_model_name(client: Client) -> None:
    rng = np.random.default_rng(2)
    await client.exchange("v2-a", rows(rng, 1), np.array([0.8]))
    await client.exchange("v2-b", rows(rng, 1), np.array([0.3]))
    body = {
        "inputs": [
            {"name": "id", "datatype": "BYTES", "shape": [2], "data": ["v2-a", "v2-b"]},
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]},
        ]
    }
    wrong = await client.http.post("/v2/models/other-model/feedback", json=body)
    assert wrong.status_code == 422
    assert wrong.json()["outputs"][0]["data"] == ["wrong_model", "wrong_model"]
    assert "made by model 'diabetes-risk', not 'other-model'" in wrong.json()["outputs"][2]["data"][0]
    ok = await client.http.post(f"/v2/models/{MODEL}/feedback", json=body)
    assert ok.status_code == 200, ok.text
    outputs = {o["name"]: o["data"] for o in ok.json()["outputs"]}
    assert outputs == {"outcome": ["accepted", "accepted"], "labelled": [1, 1], "error": ["", ""]}
    assert ok.json()["parameters"] == {"accepted": 2, "rejected": 0}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/models/m:feedback", b"{not json", "feedback body is not JSON"),
        ("/v1/models/m:feedback", b'{"pairs": []}', '{"instances": [{"id": ..., "label": ...}, ...]}'),
        ("/v1/models/m:feedback", b'{"instances": []}', "'instances' must be a non-empty list"),
        (
            "/v2/models/m/feedback",
            b'{"inputs": [{"name": "id", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}',
            "input 'label' is missing",
        ),
        (
            "/v2/models/m/feedback",
            b'{"inputs": [{"name": "id", "datatype": "BYTES", "shape": [2], "data": ["x"]},'
            b'{"name": "label", "datatype": "INT64", "shape": [1], "data": [1]}]}',
            "input 'id': 'shape' must be [1]",
        ),
        (
            "/v2/models/m/feedback",
            b'{"inputs": [{"name": "score", "datatype": "FP32", "shape": [1], "data": [1]}]}',
            "input 'score' is not a feedback input",
        ),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(
    client: Client, path: str, body: bytes, message: str
) -> None:
    answer = await client.http.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert answer.json()["reason"] == "malformed"


async def test_too_many_pairs_or_bytes_is_413(client: Client) -> None:
    limit = client.service.settings.feedback_max_pairs
    answer = await client.feedback([{"id": str(i), "label": 1} for i in range(limit + 1)])
    assert answer.status_code == 413
    assert f"DRIFT_FEEDBACK_MAX_PAIRS={limit}" in answer.json()["error"]
    size = client.service.settings.max_body_bytes
    huge = b'{"instances": [' + b" " * size + b"]}"
    answer = await client.http.post("/v1/models/m:feedback", content=huge)
    assert answer.status_code == 413
    assert f"more than DRIFT_MAX_BODY_BYTES={size}" in answer.json()["error"]


async def test_live_quality_per_stream_equals_scikit_learn(client: Client) -> None:
    rng = np.random.default_rng(5)
    truth: dict[str, tuple[list[int], list[float]]] = {"risk-stable": ([], []), "risk-canary": ([], [])}
    pairs: list[dict[str, Any]] = []
    for i in range(120):
        isvc = "risk-stable" if i % 2 else "risk-canary"
        label = int(rng.integers(0, 2))
        noise = 0.3 if isvc == "risk-stable" else 0.6  # the canary is worse
        score = float(np.clip(label * (1 - noise) + rng.uniform(0, noise), 0.01, 0.99))
        await client.exchange(f"q{i}", rows(rng, 1), np.array([score], dtype=np.float32), isvc=isvc)
        if i % 4:  # three in four get a label
            pairs.append({"id": f"q{i}", "label": label})
            truth[isvc][0].append(label)
            truth[isvc][1].append(float(np.float32(score)))
    assert (await client.feedback(pairs)).status_code == 200
    status = (await client.http.get("/quality", params={"refresh": "true"})).json()
    assert status["model_card"] == CARD
    streams = {s["inferenceservice"]: s for s in status["streams"]}
    for isvc, (labels, scores) in truth.items():
        got = streams[isvc]
        predicted = [int(s >= 0.5) for s in scores]
        assert (got["predictions"], got["labelled"]) == (60, len(labels))
        assert got["label_coverage"] == pytest.approx(len(labels) / 60)
        assert got["metrics"]["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
        assert got["metrics"]["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
        assert got["metrics"]["precision"] == pytest.approx(metrics.precision_score(labels, predicted))
        assert got["metrics"]["log_loss"] == pytest.approx(metrics.log_loss(labels, scores), rel=1e-6)
        assert got["label_delay_seconds"] >= 0.0
    assert streams["risk-stable"]["metrics"]["accuracy"] > streams["risk-canary"]["metrics"]["accuracy"]
    exposition = (await client.http.get("/metrics")).text
    stable = (
        'inferenceservice="risk-stable",inferenceservice_component="predictor",'
        'inferenceservice_namespace="ml"'
    )
    assert f"quality_labelled_predictions{{{stable}}} {float(len(truth['risk-stable'][0]))}" in exposition
    assert 'quality_model_card{metric="accuracy"} 0.74' in exposition
    assert (await client.http.get("/status")).json()["quality"]["streams"] == status["streams"]


async def test_labels_days_late_are_joined_and_retention_expires_them(client: Client) -> None:
    feedback = client.service.feedback
    assert feedback is not None and feedback.store is not None
    now = time.time()
    days = 86_400.0
    old = {
        "event_id": "e",
        "row": 0,
        "namespace": "ml",
        "inferenceservice": "risk-stable",
        "component": "predictor",
        "model_name": MODEL,
        "model_version": "1",
        "features": "[50.0, 1.0, 26.0]",
        "score": 0.9,
        "predicted": 1,
    }
    feedback.store.record(
        [
            {**old, "prediction_id": "three-days", "event_id": "e3", "predicted_at": now - 3 * days},
            {**old, "prediction_id": "forty-days", "event_id": "e40", "predicted_at": now - 40 * days},
        ]
    )
    late = await client.feedback([{"id": "three-days", "label": "high_risk"}])
    assert late.status_code == 200, late.text
    await asyncio.to_thread(feedback._purge, now)  # retention: 30 days by default
    expired = await client.feedback([{"id": "forty-days", "label": 1}])
    assert expired.status_code == 422
    assert "older than the retention of 30 days" in expired.json()["results"][0]["error"]
    status = (await client.http.get("/quality", params={"refresh": "true"})).json()
    (stream,) = [s for s in status["streams"] if s["inferenceservice"] == "risk-stable"]
    assert stream["labelled"] == 1
    assert stream["label_delay_seconds"] == pytest.approx(3 * days, abs=60)


async def test_status_page_shows_both_tracks_quality_and_distributions(client: Client) -> None:
    rng = np.random.default_rng(8)
    pairs = []
    for i in range(40):
        isvc = "risk-stable" if i % 2 else "risk-canary"
        score = float(rng.uniform(0.05, 0.95))
        await client.exchange(f"p{i}", rows(rng, 1), np.array([score], dtype=np.float32), isvc=isvc)
        pairs.append({"id": f"p{i}", "label": int(score >= 0.5) if i % 3 else int(score < 0.5)})
    assert (await client.feedback(pairs)).status_code == 200
    status = (await client.http.get("/quality", params={"refresh": "true"})).json()
    accuracy = {s["inferenceservice"]: s["metrics"]["accuracy"] for s in status["streams"]}
    page = await client.http.get("/status", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for text in (
        "risk-stable (predictor)",
        "risk-canary (predictor)",
        f"{accuracy['risk-stable']:.3f}",
        f"{accuracy['risk-canary']:.3f}",
        "<th>model card</th><th>",
        "<td>0.740</td>",  # the card's accuracy beside the live numbers
        "<h3>age</h3>",
        "<h3>sex</h3>",
        ">female</text>",  # a categorical feature drawn by category
        "<polyline",  # accuracy over time
    ):
        assert text in html, text
    assert (await client.http.get("/status", params={"format": "html"})).text == html
    assert (await client.http.get("/status")).headers["content-type"] == "application/json"


async def test_labelled_predictions_are_exported_for_retraining_page_by_page(client: Client) -> None:
    rng = np.random.default_rng(21)
    values = rows(rng, 3)
    await client.exchange("multi", values, np.array([0.2, 0.7, 0.9], dtype=np.float32))
    await client.exchange("single", rows(rng, 1), np.array([0.4], dtype=np.float32), isvc="risk-canary")
    await client.exchange("unlabelled", rows(rng, 1), np.array([0.4], dtype=np.float32))
    pairs = [{"id": "multi", "row": r, "label": y} for r, y in ((0, "low_risk"), (2, "high_risk"), (1, 0))]
    assert (await client.feedback([*pairs, {"id": "single", "label": True}])).status_code == 200
    first = (await client.http.get("/labelled", params={"limit": 2})).json()
    assert (first["features"], first["classes"], first["count"]) == (
        ["age", "sex", "bmi"],
        ["low_risk", "high_risk"],
        2,
    )
    assert [(r["id"], r["row"], r["label"], r["predicted"]) for r in first["rows"]] == [
        ("multi", 0, "low_risk", "low_risk"),
        ("multi", 1, "low_risk", "high_risk"),
    ]
    assert first["rows"][0]["features"] == pytest.approx(values[0].tolist())
    rest = (await client.http.get("/labelled", params={"limit": 2, "after": first["next_after"]})).json()
    assert [(r["id"], r["row"], r["label"]) for r in rest["rows"]] == [
        ("multi", 2, "high_risk"),
        ("single", 0, "high_risk"),
    ]
    last = (await client.http.get("/labelled", params={"limit": 2, "after": rest["next_after"]})).json()
    assert (last["count"], last["next_after"]) == (0, None)
    canary = (await client.http.get("/labelled", params={"inferenceservice": "risk-canary"})).json()
    assert [r["id"] for r in canary["rows"]] == ["single"] and canary["next_after"] is None
    bad = await client.http.get("/labelled", params={"limit": 0})
    assert bad.status_code == 400 and "'limit' must be 1..100000" in bad.json()["error"]


async def test_one_id_labels_every_stream_that_logged_it(client: Client) -> None:
    """The transformer and the predictor behind it both log the exchange (same id): one pair labels both."""
    rng = np.random.default_rng(4)
    values = rows(rng, 1)
    await client.exchange("hop", values, np.array([0.8], dtype=np.float32), component="transformer")
    await client.exchange("hop", values, np.array([0.8], dtype=np.float32), component="predictor")
    answer = await client.feedback([{"id": "hop", "label": "high_risk"}])
    assert answer.status_code == 200
    assert answer.json()["results"] == [{"index": 0, "id": "hop", "outcome": "accepted", "labelled": 2}]
    exported = (await client.http.get("/labelled")).json()
    assert sorted(r["component"] for r in exported["rows"]) == ["predictor", "transformer"]
