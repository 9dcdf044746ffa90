"""Windows, payload decoding and CloudEvent parsing, in process (events from the cloudevents 2 SDK)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from drift_detector import body as bodies
from drift_detector.cloudevent import STRUCTURED, Event, binary_event, structured_event
from drift_detector.errors import BadEvent
from drift_detector.payload import Schema, request_rows, response_scores
from drift_detector.window import Window
from drift_population import NAMES, SPEC, Population
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

SCHEMA = Schema(names=NAMES, spec=SPEC, max_rows=1000)


def parse(headers: dict[str, str], body: bytes) -> Event:
    """The event at the door, as the ingress reads it (lower-case byte headers)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("content-type") == STRUCTURED:
        return structured_event(body)
    return binary_event([(k.encode(), v.encode()) for k, v in lowered.items()], body)


def document(event: Event) -> Any:
    """The event's data as the worker decodes it."""
    return event.data if event.body is None else bodies.decode(event.body, 1 << 20, event.header_length)


def rows(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32).reshape(n, 1)


def test_tumbling_windows_are_disjoint_and_split_batches() -> None:
    w = Window(size=4, step=4, width=1)
    assert w.add(rows(3)) == []
    due = w.add(rows(6, start=3))  # 3..8: completes 0-3, then 4-7, 8 stays
    assert [d.ravel().tolist() for d in due] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert w.buffered == 1 and w.rows_seen == 9
    assert [d.ravel().tolist() for d in w.add(rows(3, start=9))] == [[8, 9, 10, 11]]


def test_sliding_windows_step_over_the_last_rows() -> None:
    w = Window(size=4, step=2, width=1)
    due = w.add(rows(8))
    assert [d.ravel().tolist() for d in due] == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert [d.ravel().tolist() for d in w.add(rows(1, start=8))] == []
    assert [d.ravel().tolist() for d in w.add(rows(1, start=9))] == [[6, 7, 8, 9]]


def test_a_batch_larger_than_the_window() -> None:
    w = Window(size=3, step=3, width=2)
    due = w.add(np.arange(20, dtype=np.float32).reshape(10, 2))
    assert len(due) == 3 and due[2][:, 0].tolist() == [12, 14, 16]


def ce(kind: str, data: Any, mode: str = "binary", **attrs: str) -> tuple[dict[str, str], bytes]:
    event = CloudEvent(
        attributes={
            "type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
            "source": "http://localhost:9081/",
            "id": "abc-1",
            "inferenceservicename": "income",
            "namespace": "prod",
            "component": "predictor",
            "endpoint": "",
            "datacontenttype": "application/json",
            **attrs,
        },
        data=data,
    )
    message = (to_binary if mode == "binary" else to_structured)(event, JSONFormat())
    return dict(message.headers), message.body


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_sdk_events_parse_in_both_modes(mode: str) -> None:
    headers, body = ce("request", {"instances": [[1.0, 0.0, 2.0, 3.0, 4.0]]}, mode)
    event = parse(headers, body)
    assert (
        event.id,
        event.kind,
        event.key.inference_service,
        event.key.namespace,
        event.key.component,
    ) == ("abc-1", "request", "income", "prod", "predictor")
    assert request_rows(document(event), SCHEMA).tolist() == [[1.0, 0.0, 2.0, 3.0, 4.0]]


def test_structured_data_base64() -> None:
    envelope = {
        "specversion": "1.0",
        "id": "x",
        "source": "s",
        "type": RESPONSE_TYPE,
        "inferenceservicename": "a",
        "data_base64": base64.b64encode(json.dumps({"predictions": [[0.3, 0.7]]}).encode()).decode(),
    }
    event = parse({"Content-Type": "application/cloudevents+json"}, json.dumps(envelope).encode())
    assert event.kind == "response"
    assert response_scores(document(event)).tolist() == pytest.approx([0.7])


def test_percent_encoded_headers_are_decoded() -> None:
    headers, body = ce("request", {"instances": [[1, 0, 2, 3, 4]]}, inferenceservicename="a b")
    headers = {
        k: (v.replace(" ", "%20") if k == "ce-inferenceservicename" else v) for k, v in headers.items()
    }
    assert parse(headers, body).key.inference_service == "a b"


def test_raw_records_and_feature_columns_encode_like_the_spec() -> None:
    population = Population(seed=1)
    records = population.records(3)
    expected = SPEC.vectorise(records)
    assert np.array_equal(request_rows({"instances": records}, SCHEMA), expected)
    columns = {
        "inputs": [
            {
                "name": n,
                "shape": [3],
                "datatype": "BYTES" if n == "sex" else "FP64",
                "data": [r[n] for r in records],
            }
            for n in NAMES
        ]
    }
    assert np.array_equal(request_rows(columns, SCHEMA), expected)


def test_transformer_requests_and_responses() -> None:
    records = Population(seed=2).records(4)
    expected = SPEC.vectorise(records)
    by_json = {
        "inputs": [{"name": "records", "shape": [1], "datatype": "BYTES", "data": [json.dumps(records)]}]
    }
    assert np.array_equal(request_rows(by_json, SCHEMA), expected)
    with_null = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "BYTES" if n == "sex" else "FP64", "data": [records[0][n]]}
            for n in NAMES
        ]
    }
    with_null["inputs"][2]["data"] = [None]  # bmi missing: the spec rejects it, as the transformer would
    with pytest.raises(BadEvent, match="field 'bmi': is missing") as info:
        request_rows(with_null, SCHEMA)
    assert info.value.reason == "invalid_records"
    # the transformer answers probabilities by class name; "probability" is the picked label's
    answer = {"predictions": [{"label": "0", "probability": 0.9, "probabilities": {"0": 0.9, "1": 0.1}}]}
    assert response_scores(answer, SPEC.classes).tolist() == pytest.approx([0.1])


def test_response_formats() -> None:
    assert response_scores(
        {"predictions": [{"label": 1, "probabilities": [0.2, 0.8]}]}
    ).tolist() == pytest.approx([0.8])
    assert response_scores({"predictions": [0.25, 0.5]}).tolist() == [0.25, 0.5]
    assert response_scores({"predictions": [{"probability": 0.4}]}).tolist() == pytest.approx([0.4])
    v2 = {
        "outputs": [
            {"name": "probabilities", "shape": [2, 2], "datatype": "FP32", "data": [0.9, 0.1, 0.3, 0.7]}
        ]
    }
    assert response_scores(v2).tolist() == pytest.approx([0.1, 0.7])


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        ([1, 2], "bad_payload", "must be a JSON object"),
        ({"instances": []}, "bad_payload", "non-empty list"),
        ({"instances": [[1, 2, 3]]}, "wrong_feature_count", "rows have 3 features; the model has 5"),
        ({"instances": [{"age": 1}]}, "invalid_records", "field 'sex': is missing"),
        ({"instances": [[1, 0, 2, 3, 4]] * 1001}, "bad_payload", "exceed the maximum of 1000"),
        (
            {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "BYTES", "data": ["a"] * 5}]},
            "bad_payload",
            "BYTES",
        ),
        (
            {
                "inputs": [
                    {"name": "age", "shape": [1], "datatype": "FP32", "data": [1]},
                    {"name": "height", "shape": [1], "datatype": "FP32", "data": [1]},
                ]
            },
            "wrong_feature_count",
            "['height'] are not features",
        ),
    ],
)
def test_bad_requests_name_the_problem(data: Any, reason: str, message: str) -> None:
    with pytest.raises(BadEvent) as info:
        request_rows(data, SCHEMA)
    assert info.value.reason == reason
    assert message in info.value.message


def test_unknown_type_and_missing_attributes() -> None:
    headers, body = ce("request", {}, type="com.example.x")
    with pytest.raises(BadEvent, match="unknown CloudEvent type") as info:
        parse(headers, body)
    assert info.value.reason == "unknown_type"
    headers, body = ce("request", {})
    del headers["ce-source"]
    with pytest.raises(BadEvent, match=r"lacks required attribute.*ce-source"):
        parse(headers, body)
