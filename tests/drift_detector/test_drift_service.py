"""The real drift detector (``.venv-drift/bin/python -m drift_detector``) on a loopback port.

Events are built with the cloudevents SDK in binary and structured mode, as KServe's agent and
other senders post them. Detection runs in windows of 100 rows with Bonferroni at p=0.05.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from drift_client import (
    event,
    metrics,
    post,
    sample,
    stream,
    v1_records,
    v1_response,
    v2_response,
    v2_tensor,
    wait_idle,
    wait_windows,
)
from drift_population import NAMES, Population
from drift_receiver import WINDOW, Receiver
from scipy.stats import binom


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as c:
        yield c


def send_requests(
    client: httpx.Client,
    base: str,
    isvc: str,
    population: Population,
    rows: int,
    batch: int,
    shift: dict[str, float] | None = None,
    score_shift: float = 0.0,
) -> None:
    """``rows`` rows in events of ``batch``, alternating V1 records / V2 tensors and binary / structured."""
    for i in range(rows // batch):
        mode = "binary" if i % 2 == 0 else "structured"
        if i % 2 == 0:
            body = v1_records(population.records(batch, shift))
        else:
            body = v2_tensor(population.rows(batch, shift))
        r = post(client, base, *event("request", isvc, body, event_id=f"{isvc}-{i}", mode=mode))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
        scores = population.scores(batch, score_shift)
        response = v1_response(scores) if i % 2 == 0 else v2_response(scores)
        r = post(client, base, *event("response", isvc, response, event_id=f"{isvc}-{i}", mode=mode))
        assert r.status_code == 200, r.text


def test_live_ready_and_empty_status(detector: str, client: httpx.Client) -> None:
    assert client.get(f"{detector}/live").json() == {"status": "alive"}
    assert client.get(f"{detector}/ready").json() == {"status": "ready"}
    status = client.get(f"{detector}/status").json()
    assert status["ready"] is True
    assert status["backend"] == "alibi"
    assert status["window"] == {"size": WINDOW, "step": WINDOW, "mode": "tumbling"}
    assert status["features"] == list(NAMES)


def test_one_sigma_shift_on_one_feature_is_detected_within_one_window(
    detector: str, client: httpx.Client, receiver: Receiver
) -> None:
    population = Population(seed=101)
    send_requests(client, detector, "shift", population, WINDOW, batch=10)
    calm = wait_windows(client, detector, "shift", "features", 1)
    assert calm["features"]["drift"] is False, calm["features"]
    assert calm["prediction"]["drift"] is False, calm["prediction"]

    send_requests(
        client, detector, "shift", population, WINDOW, batch=10, shift={"bmi": 1.0}, score_shift=1.0
    )
    shifted = wait_windows(client, detector, "shift", "features", 2)
    verdict = shifted["features"]
    assert verdict["drift"] is True
    assert verdict["window"] == 2 and verdict["rows"] == WINDOW
    assert verdict["drifted_features"] == ["bmi"]
    assert verdict["p_values"]["bmi"] < verdict["threshold"] == pytest.approx(0.05 / len(NAMES))
    assert shifted["prediction"]["drift"] is True
    assert shifted["windows_drifted"] == {"features": 1, "prediction": 1}

    values = metrics(client, detector)
    labels = {
        "inferenceservice": "shift",
        "inferenceservice_namespace": "default",
        "inferenceservice_component": "predictor",
    }
    assert sample(values, "drift_detected", **labels, kind="features") == 1.0
    assert sample(values, "drift_detected", **labels, kind="prediction") == 1.0
    assert sample(values, "drift_feature_drifted", **labels, feature="bmi") == 1.0
    assert sample(values, "drift_feature_drifted", **labels, feature="age") == 0.0
    assert sample(values, "drift_p_value", **labels, feature="bmi") == pytest.approx(
        verdict["p_values"]["bmi"]
    )
    assert sample(values, "drift_distance", **labels, feature="bmi") > 0.2
    assert sample(values, "drift_windows_evaluated_total", **labels, kind="features") == 2.0
    assert sample(values, "drift_windows_drifted_total", **labels, kind="features") == 1.0
    assert sample(values, "drift_events_received_total", **labels, type="request") == 20.0
    assert sample(values, "drift_events_received_total", **labels, type="response") == 20.0
    assert sample(values, "drift_events_joined_total", **labels) == 20.0
    assert sample(values, "drift_rows_received_total", **labels, kind="features") == 2.0 * WINDOW
    assert sample(values, "drift_events_dropped_total", **labels) == 0.0

    # the sink got a CloudEvent for each drifted window (features, prediction)
    sent = receiver.wait_for(2, **{"ce-inferenceservicename": "shift"})
    assert {h["ce-type"] for h, _ in sent} == {"org.kubeflow.serving.drift.detected"}
    kinds = sorted(json.loads(b)["kind"] for _, b in sent)
    assert kinds == ["features", "prediction"]
    assert json.loads(next(b for _, b in sent if json.loads(b)["kind"] == "features"))[
        "drifted_features"
    ] == ["bmi"]


def test_in_distribution_traffic_stays_within_the_false_alarm_rate(
    detector: str, client: httpx.Client
) -> None:
    """100 windows of fresh in-distribution rows (seeded): at most the 99.9% quantile of Binomial(100, 0.05).

    Bonferroni keeps the feature test's rate at or below 5%; the prediction test is a single KS
    test at 5%. The bound (13) is exceeded by chance with probability < 0.1% when the rate holds.
    """
    population = Population(seed=202)
    windows = 100
    for i in range(windows):
        rows = population.rows(WINDOW)
        r = post(client, detector, *event("request", "calm", v2_tensor(rows), event_id=f"calm-{i}"))
        assert r.status_code == 200, r.text
        r = post(
            client,
            detector,
            *event("response", "calm", v2_response(population.scores(WINDOW)), event_id=f"calm-{i}"),
        )
        assert r.status_code == 200, r.text
    calm = wait_windows(client, detector, "calm", "features", windows, timeout=60)
    assert calm["windows_evaluated"] == {"features": windows, "prediction": windows}
    bound = int(binom.ppf(0.999, windows, 0.05))
    assert bound == 13
    assert calm["windows_drifted"]["features"] <= bound, calm["windows_drifted"]
    assert calm["windows_drifted"]["prediction"] <= bound, calm["windows_drifted"]


def test_stable_and_canary_are_judged_apart(detector: str, client: httpx.Client) -> None:
    stable, canary = Population(seed=303), Population(seed=304)
    for i in range(10):  # interleaved, as one detector receives both
        for isvc, population, shift in (("income", stable, None), ("income-canary", canary, {"age": 1.0})):
            body = v1_records(population.records(20, shift))
            mode = "structured" if i % 3 == 0 else "binary"
            r = post(client, detector, *event("request", isvc, body, event_id=f"{isvc}-{i}", mode=mode))
            assert r.status_code == 200, r.text
            answer = v1_response(population.scores(20))
            r = post(client, detector, *event("response", isvc, answer, event_id=f"{isvc}-{i}", mode=mode))
            assert r.status_code == 200, r.text
    s = wait_windows(client, detector, "income", "features", 2)
    c = wait_windows(client, detector, "income-canary", "features", 2)
    assert s["features"]["drift"] is False and s["windows_drifted"]["features"] == 0
    assert c["features"]["drift"] is True and c["features"]["drifted_features"] == ["age"]
    values = metrics(client, detector)
    assert sample(values, "drift_detected", inferenceservice="income", kind="features") == 0.0
    assert sample(values, "drift_detected", inferenceservice="income-canary", kind="features") == 1.0
    assert sample(values, "drift_p_value", inferenceservice="income", feature="age") > 0.01
    assert sample(values, "drift_p_value", inferenceservice="income-canary", feature="age") < 0.01


def _binary(isvc: str = "bad", **overrides: str) -> dict[str, str]:
    headers, _ = event("request", isvc, {})
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v != "<drop>"}


GOOD_ROW = [50.0, 1.0, 26.0, 95.0, 90.0]
AT_THE_DOOR: list[tuple[str, dict[str, str], bytes, int, str, str]] = [
    (
        "no CloudEvent at all",
        {"content-type": "application/json"},
        b"{}",
        400,
        "malformed_event",
        "not a CloudEvent",
    ),
    (
        "binary without ce-id",
        _binary(**{"ce-id": "<drop>"}),
        b'{"instances": [[1]]}',
        400,
        "malformed_event",
        "ce-id",
    ),
    ("wrong specversion", _binary(**{"ce-specversion": "0.1"}), b"{}", 400, "malformed_event", "specversion"),
    (
        "no inferenceservicename",
        _binary(**{"ce-inferenceservicename": "<drop>"}),
        b"{}",
        400,
        "malformed_event",
        "inferenceservicename",
    ),
    (
        "unknown type",
        _binary(**{"ce-type": "com.example.other"}),
        b"{}",
        400,
        "unknown_type",
        "unknown CloudEvent type 'com.example.other'",
    ),
    (
        "structured body not JSON",
        {"content-type": "application/cloudevents+json"},
        b"{oops",
        400,
        "not_json",
        "structured CloudEvent is not JSON",
    ),
    (
        "structured without type",
        {"content-type": "application/cloudevents+json"},
        json.dumps({"specversion": "1.0", "id": "1", "source": "s", "data": {}}).encode(),
        400,
        "malformed_event",
        "type",
    ),
    (
        "batch not a list",
        {"content-type": "application/cloudevents-batch+json"},
        b"{}",
        400,
        "malformed_event",
        "must be a JSON array of events, not dict",
    ),
    (
        "unknown InferenceService",
        _binary(isvc="somebody-else"),
        json.dumps({"instances": [GOOD_ROW]}).encode(),
        400,
        "unknown_inferenceservice",
        "'somebody-else' is not watched",
    ),
    (
        "body too large",
        _binary(),
        b'{"instances": [' + b"1," * (1 << 20) + b"1]}",
        413,
        "too_large",
        "more than DRIFT_MAX_BODY_BYTES",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason", "message"),
    [m[1:] for m in AT_THE_DOOR],
    ids=[m[0] for m in AT_THE_DOOR],
)
def test_bad_envelopes_are_refused_at_the_door_with_the_reason_and_counted(
    detector: str,
    client: httpx.Client,
    headers: dict[str, str],
    body: bytes,
    status: int,
    reason: str,
    message: str,
) -> None:
    before = sample(metrics(client, detector), "drift_events_rejected_total", reason=reason)
    r = client.post(detector, headers=headers, content=body)
    assert r.status_code == status, r.text
    assert r.json()["reason"] == reason
    assert message in r.json()["error"]
    after = sample(metrics(client, detector), "drift_events_rejected_total", reason=reason)
    assert after == before + 1
    assert client.get(f"{detector}/live").status_code == 200


IN_THE_BODY: list[tuple[str, str, bytes, str, str]] = [
    ("binary body not JSON", "request", b"instances=1,2", "not_json", "is not JSON"),
    ("gzip magic but broken", "request", b"\x1f\x8b\x08garbage", "not_json", "does not decompress"),
    ("neither instances nor inputs", "request", b'{"rows": []}', "bad_payload", "neither 'instances'"),
    (
        "too few features (V1 rows)",
        "request",
        json.dumps({"instances": [GOOD_ROW[:4]]}).encode(),
        "wrong_feature_count",
        "rows have 4 features; the model has 5",
    ),
    (
        "too many features (V2 tensor)",
        "request",
        json.dumps(v2_tensor(np.ones((2, 6), dtype=np.float32))).encode(),
        "wrong_feature_count",
        "rows have 6 features; the model has 5",
    ),
    (
        "V2 shape does not match data",
        "request",
        json.dumps(
            {"inputs": [{"name": "input", "shape": [2, 5], "datatype": "FP32", "data": GOOD_ROW}]}
        ).encode(),
        "bad_payload",
        "has 5 values but its shape [2, 5] needs 10",
    ),
    (
        "invalid raw record",
        "request",
        json.dumps({"instances": [{"age": 50, "sex": "other", "bmi": 26, "bp": 95, "glu": 90}]}).encode(),
        "invalid_records",
        "unknown category 'other'",
    ),
    (
        "ragged rows",
        "request",
        json.dumps({"instances": [GOOD_ROW, GOOD_ROW[:3]]}).encode(),
        "bad_payload",
        "rows of equal length",
    ),
    (
        "response without scores",
        "response",
        json.dumps({"predictions": [{"label": 1}]}).encode(),
        "bad_payload",
        "has no score",
    ),
]


@pytest.mark.parametrize(
    ("kind", "body", "reason", "message"), [m[1:] for m in IN_THE_BODY], ids=[m[0] for m in IN_THE_BODY]
)
def test_bad_bodies_are_counted_with_the_reason_and_named_in_status(
    detector: str, client: httpx.Client, kind: str, body: bytes, reason: str, message: str
) -> None:
    """Bodies are decoded off the request path: the POST is accepted, the problem is counted,
    logged and listed (event id, reason, message) under ``rejections`` in ``GET /status``."""
    event_id = f"bad-body-{uuid.uuid4()}"
    before = sample(metrics(client, detector), "drift_events_rejected_total", reason=reason)
    headers = _binary(**{"ce-id": event_id})
    if kind == "response":
        headers["ce-type"] = "org.kubeflow.serving.inference.response"
    r = client.post(detector, headers=headers, content=body)
    assert r.status_code == 200 and r.json() == {"status": "accepted", "id": event_id}, r.text
    status = wait_idle(client, detector)
    (listed,) = [e for e in status["rejections"] if e["id"] == event_id]
    assert (listed["reason"], listed["type"], listed["inferenceservice"]) == (reason, kind, "bad")
    assert message in listed["error"]
    after = sample(metrics(client, detector), "drift_events_rejected_total", reason=reason)
    assert after == before + 1


def test_rejected_events_never_reach_a_window(detector: str, client: httpx.Client) -> None:
    status = wait_idle(client, detector)
    bad = stream(status, "bad")
    assert bad is None or bad["rows_seen"]["features"] == 0
