"""KServe agent semantics (contract C4) against the real detector, with the agent's own bytes.

Events are replayed as KServe's Go logger writes them (``agent_events.py``: header names, order
and values) on a raw socket: V1 and V2 JSON, the V2 binary extension (FP32 and BYTES), gzip
bodies, NaN literals, GET probes with empty bodies, requests answered 400/404/503 (no response
event), explainer calls marked in ``Ce-Metadata``. The batch format and a full queue too.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from agent_events import Agent, replay
from drift_client import metrics, sample, stream, wait_idle, wait_metric
from drift_population import NAMES, Population
from drift_server import start_detector
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

WINDOW = 20
QUEUE = 1000


@pytest.fixture(scope="module")
def base(synthetic_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A detector that forgets unanswered requests after 1 s, with a queue of 1000 events."""
    url, proc = start_detector(
        synthetic_bundle,
        tmp_path_factory.mktemp("drift-agent") / "drift.log",
        {
            "DRIFT_WINDOW_SIZE": str(WINDOW),
            "DRIFT_JOIN_TIMEOUT_SECONDS": "1",
            "DRIFT_QUEUE_SIZE": str(QUEUE),
            "DRIFT_BACKEND": "scipy",
        },
    )
    yield url
    assert proc.stop() == 0, proc.output()


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as c:
        yield c


def agent(base: str, isvc: str, **kwargs: object) -> Agent:
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    return Agent(parts.hostname, parts.port, isvc, namespace="ml", **kwargs)  # type: ignore[arg-type]


def send(a: Agent, events: list[bytes]) -> list[tuple[int, dict[str, object]]]:
    return [(status, json.loads(body)) for status, body in replay(a.host, a.port, events)]


def v1(rows: np.ndarray) -> bytes:
    return json.dumps({"instances": rows.tolist()}).encode()


def v1_answer(scores: np.ndarray) -> bytes:
    return json.dumps(
        {"predictions": [{"label": int(p > 0.5), "probabilities": [1 - float(p), float(p)]} for p in scores]}
    ).encode()


def v2_answer(scores: np.ndarray) -> bytes:
    probabilities = np.column_stack([1 - scores, scores]).reshape(-1).tolist()
    return json.dumps(
        {
            "id": "x",
            "model_name": "m",
            "model_version": "1",
            "outputs": [
                {
                    "name": "probabilities",
                    "shape": [len(scores), 2],
                    "datatype": "FP32",
                    "data": probabilities,
                }
            ],
        }
    ).encode()


def v2_binary(rows: np.ndarray) -> bytes:
    """A tritonclient-style V2 request: JSON header, then the FP32 tensor's raw bytes."""
    raw = rows.astype("<f4").tobytes()
    header = {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    return json.dumps(header).encode() + raw


def v2_binary_records(records: list[dict[str, object]]) -> bytes:
    """The transformer's BYTES input ``records`` (JSON records) in the binary extension."""
    text = json.dumps(records).encode()
    raw = struct.pack("<I", len(text)) + text
    header = {
        "inputs": [
            {
                "name": "records",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    return json.dumps(header).encode() + raw


def rejected_total(client: httpx.Client, base: str) -> float:
    return sample(metrics(client, base), "drift_events_rejected_total")


def test_agent_bytes_of_every_body_kind_are_joined_and_enter_the_windows(
    base: str, client: httpx.Client
) -> None:
    population = Population(seed=5)
    a = agent(base, "agent-replay")
    rows = [population.rows(2) for _ in range(5)]
    scores = population.scores(2)
    nan_rows = population.rows(2)
    nan_body = v1(nan_rows).replace(str(float(nan_rows[1, 2])).encode(), b"NaN", 1)
    assert b"NaN" in nan_body
    v2_json = {
        "inputs": [{"name": "input", "shape": [2, 5], "datatype": "FP32", "data": rows[1].ravel().tolist()}]
    }
    events = [
        *a.exchange(v1(rows[0]), status=200, response=v1_answer(scores)),
        *a.exchange(json.dumps(v2_json).encode(), status=200, response=v2_answer(scores)),
        *a.exchange(
            v2_binary(rows[2]),
            status=200,
            response=v2_answer(scores),
            content_type="application/octet-stream",
        ),
        *a.exchange(gzip.compress(v1(rows[3])), status=200, response=v1_answer(scores)),
        *a.exchange(nan_body, status=200, response=v1_answer(scores)),
        *a.exchange(
            v2_binary_records(population.records(2)),
            status=200,
            response=v2_answer(scores),
            content_type="application/octet-stream",
        ),
    ]
    before = rejected_total(client, base)
    answers = send(a, events)
    assert [s for s, _ in answers] == [200] * 12, answers
    assert all(body["status"] == "accepted" for _, body in answers), answers

    status = wait_idle(client, base)
    s = stream(status, "agent-replay")
    assert s is not None, status
    assert s["rows_seen"] == {"features": 11, "prediction": 12}  # 12 rows, one with NaN left out
    values = metrics(client, base)
    labels = {
        "inferenceservice": "agent-replay",
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    assert sample(values, "drift_events_received_total", **labels, type="request") == 6
    assert sample(values, "drift_events_received_total", **labels, type="response") == 6
    assert sample(values, "drift_events_joined_total", **labels) == 6
    assert sample(values, "drift_rows_skipped_total", **labels, kind="features") == 1
    assert sample(values, "drift_rows_received_total", **labels, kind="features") == 11
    assert rejected_total(client, base) == before, status["rejections"]


def test_get_probes_and_metadata_answers_are_ignored_not_rejected(base: str, client: httpx.Client) -> None:
    a = agent(base, "agent-probes")
    ready = json.dumps({"name": "m", "ready": True}).encode()
    metadata = json.dumps(
        {
            "name": "m",
            "versions": ["1"],
            "platform": "onnxruntime",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 5]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
        }
    ).encode()
    events = [
        *a.exchange(b"", status=200, response=ready, content_type=None),  # GET /v2/models/m/ready
        *a.exchange(b"", status=200, response=metadata, content_type=None),  # GET /v2/models/m
        *a.exchange(b"", status=503, content_type=None),  # a probe while loading
    ]
    values = metrics(client, base)
    empty = sample(values, "drift_events_ignored_total", reason="empty")
    other = sample(values, "drift_events_ignored_total", reason="not_inference")
    before = rejected_total(client, base)
    answers = send(a, events)
    assert [s for s, _ in answers] == [200] * 5
    assert [b["status"] for _, b in answers] == ["ignored", "accepted", "ignored", "accepted", "ignored"]
    assert answers[0][1] == {"status": "ignored", "reason": "empty"}
    status = wait_idle(client, base)
    values = metrics(client, base)
    assert sample(values, "drift_events_ignored_total", reason="empty") == empty + 3
    assert sample(values, "drift_events_ignored_total", reason="not_inference") == other + 2
    assert rejected_total(client, base) == before, status["rejections"]
    assert stream(status, "agent-probes") is None  # no stream, no window, no series


def test_requests_answered_400_404_503_never_enter_a_window_and_are_counted_unanswered(
    base: str, client: httpx.Client
) -> None:
    population = Population(seed=6)
    a = agent(base, "agent-refused")
    answered = population.rows(3)
    events = [
        *a.exchange(v1(population.rows(2000)), status=400),  # over the predictor's row limit
        *a.exchange(v1(population.rows(4)), status=404),  # wrong model name
        *a.exchange(v1(population.rows(5)), status=503),  # during a rollout
        *a.exchange(v1(answered), status=200, response=v1_answer(population.scores(3))),
    ]
    answers = send(a, events)
    assert [s for s, _ in answers] == [200] * 5
    labels = {
        "inferenceservice": "agent-refused",
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    # DRIFT_JOIN_TIMEOUT_SECONDS=1: the three unanswered requests are forgotten and counted
    assert wait_metric(client, base, "drift_events_unanswered_total", 3, **labels) == 3
    status = wait_idle(client, base)
    s = stream(status, "agent-refused")
    assert s is not None and s["rows_seen"]["features"] == 3, s
    assert status["joins"]["held_requests"] == 0
    values = metrics(client, base)
    assert sample(values, "drift_events_received_total", **labels, type="request") == 4
    assert sample(values, "drift_events_joined_total", **labels) == 1
    assert sample(values, "drift_rows_received_total", **labels, kind="features") == 3


def test_a_response_before_its_request_still_admits_the_rows(base: str, client: httpx.Client) -> None:
    population = Population(seed=7)
    a = agent(base, "agent-order")
    request, response = a.exchange(
        v1(population.rows(4)), status=200, response=v1_answer(population.scores(4))
    )
    assert [s for s, _ in send(a, [response, request])] == [200, 200]
    s = stream(wait_idle(client, base), "agent-order")
    assert s is not None and s["rows_seen"] == {"features": 4, "prediction": 4}, s


def test_explainer_calls_marked_in_ce_metadata_are_ignored(base: str, client: httpx.Client) -> None:
    population = Population(seed=8)
    a = agent(base, "agent-explained", metadata_headers=("X-Model-Serving-Caller",))
    marked = a.exchange(
        v1(population.rows(50)),
        status=200,
        response=v1_answer(population.scores(50)),
        request_headers={"x-model-serving-caller": "explainer"},
    )
    assert b'Ce-Metadata: {"X-Model-Serving-Caller":["explainer"]}\r\n' in marked[0]
    client_call = a.exchange(v1(population.rows(2)), status=200, response=v1_answer(population.scores(2)))
    assert b"Ce-Metadata: {}\r\n" in client_call[0]
    before = sample(metrics(client, base), "drift_events_ignored_total", reason="explainer")
    answers = send(a, [*marked, *client_call])
    assert [b for _, b in answers[:2]] == [{"status": "ignored", "reason": "explainer"}] * 2
    assert [b["status"] for _, b in answers[2:]] == ["accepted", "accepted"]
    s = stream(wait_idle(client, base), "agent-explained")
    assert s is not None and s["rows_seen"] == {"features": 2, "prediction": 2}, s
    assert sample(metrics(client, base), "drift_events_ignored_total", reason="explainer") == before + 2


def structured(
    kind: str, event_id: str, isvc: str, data: object = None, **extra: object
) -> dict[str, object]:
    """One event of the batch format (C2): attributes and extensions as lower-case keys."""
    doc: dict[str, object] = {
        "specversion": "1.0",
        "id": event_id,
        "type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
        "source": "http://localhost:9081/",
        "time": "2026-11-30T12:00:00.123456789Z",
        "inferenceservicename": isvc,
        "namespace": "ml",
        "component": "predictor",
        "endpoint": "",
        "metadata": "{}",
        "datacontenttype": "application/json",
        **extra,
    }
    if data is not None:
        doc["data"] = data
    return doc


def test_the_batch_format_is_accepted(base: str, client: httpx.Client) -> None:
    population = Population(seed=9)
    batch = []
    for i in range(10):
        rows, scores = population.rows(2), population.scores(2)
        batch.append(structured("request", f"b{i}", "agent-batch", {"instances": rows.tolist()}))
        answer = v2_answer(scores)
        if i % 2:  # data_base64, gzip-compressed as a client may have sent it
            batch.append(
                structured(
                    "response",
                    f"b{i}",
                    "agent-batch",
                    data_base64=base64.b64encode(gzip.compress(answer)).decode(),
                )
            )
        else:
            batch.append(structured("response", f"b{i}", "agent-batch", json.loads(answer)))
    batch.append(structured("request", "probe", "agent-batch"))  # a GET: no data
    r = client.post(
        base, content=json.dumps(batch), headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "accepted", "events": 20}
    s = stream(wait_idle(client, base), "agent-batch")
    assert s is not None and s["rows_seen"] == {"features": 20, "prediction": 20}, s


def test_a_bad_batch_is_answered_400_naming_each_bad_event_and_the_good_ones_are_taken(
    base: str, client: httpx.Client
) -> None:
    population = Population(seed=10)
    good = structured("request", "g1", "agent-bad-batch", {"instances": population.rows(1).tolist()})
    no_id = {
        k: v for k, v in structured("request", "x", "agent-bad-batch", {"instances": []}).items() if k != "id"
    }
    other = structured("request", "y", "agent-bad-batch", {}, type="com.example.other")
    answer = structured("response", "g1", "agent-bad-batch", json.loads(v1_answer(population.scores(1))))
    batch = [good, no_id, other, "not an event", answer]
    before = rejected_total(client, base)
    r = client.post(
        base, content=json.dumps(batch), headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"].startswith("event 1: CloudEvent lacks required attribute(s): id")
    assert body["error"].endswith("(and 2 more bad event(s))")
    assert body["accepted"] == 2
    assert [(e["index"], e["reason"]) for e in body["rejected"]] == [
        (1, "malformed_event"),
        (2, "unknown_type"),
        (3, "malformed_event"),
    ]
    assert "unknown CloudEvent type 'com.example.other'" in body["rejected"][1]["error"]
    assert "must be a JSON object, not str" in body["rejected"][2]["error"]
    assert rejected_total(client, base) == before + 3
    s = stream(wait_idle(client, base), "agent-bad-batch")
    assert s is not None and s["rows_seen"]["features"] == 1, s
    r = client.post(base, content=b'{"a": 1}', headers={"content-type": "application/cloudevents-batch+json"})
    assert r.status_code == 400 and "must be a JSON array of events, not dict" in r.json()["error"]


def test_a_full_queue_answers_503_with_retry_after_and_counts_the_drop(
    base: str, client: httpx.Client
) -> None:
    batch = [
        structured("request", f"q{i}", "agent-full", {"instances": [[1.0] * len(NAMES)]})
        for i in range(QUEUE + 1)
    ]
    labels = {
        "inferenceservice": "agent-full",
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    r = client.post(
        base, content=json.dumps(batch), headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.json() == {
        "error": f"the event queue is full (DRIFT_QUEUE_SIZE={QUEUE}); retry later",
        "reason": "queue_full",
    }
    assert sample(metrics(client, base), "drift_events_dropped_total", **labels) == QUEUE + 1
    assert stream(wait_idle(client, base), "agent-full") is None  # nothing of it was taken
