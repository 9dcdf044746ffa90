"""REST exchanges logged by the predictor, compared with what KServe's Go logger writes.

The receiver records every POST's header lines in wire order; each exchange must be the
agent's two events (request before the answer, response only for a 200, one ce-id), with the
request's own content type on both and the bodies byte for byte as they crossed the wire.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from cloudevents.http import from_http
from recording_receiver import Post
from serving_common.cloudevents import SOURCE_PREFIX
from telemetry_stack import (
    GO_HEADER_ORDER,
    ISVC,
    NAMESPACE,
    REQUEST,
    RESPONSE,
    ROWS,
    LoggedPredictor,
    by_type,
    go_time,
    v2_binary_body,
    v2_body,
)


def assert_agent_headers(post: Post, ce_id: str, kind: str, content_type: str | None) -> None:
    names = [name for name, _ in post.lines]
    want = GO_HEADER_ORDER if content_type else GO_HEADER_ORDER[:-1]
    assert names == want, names
    h = dict(post.lines)
    assert h["Content-Length"] == str(len(post.body))
    assert h["Ce-Component"] == "predictor" and h["Ce-Endpoint"] == ""
    assert h["Ce-Id"] == ce_id and h["Ce-Type"] == kind
    assert h["Ce-Inferenceservicename"] == ISVC and h["Ce-Namespace"] == NAMESPACE
    assert h["Ce-Metadata"] == "{}" and h["Ce-Source"] == SOURCE_PREFIX and h["Ce-Specversion"] == "1.0"
    assert go_time(h["Ce-Time"]) <= go_time(h["Ce-Recordedtime"])
    if content_type:
        assert h["Content-Type"] == content_type
    event = from_http(post.headers, post.body)  # a valid CloudEvent for the SDK too
    assert event["id"] == ce_id and event["inferenceservicename"] == ISVC


def test_v2_json_exchange_is_the_agents_two_events(binary: LoggedPredictor) -> None:
    body = v2_body(ROWS[:2], request_id="client-id-1")
    r = binary.infer(body, "rest-json")
    assert r.status_code == 200, r.text
    binary.events("rest-json", 2)
    posts = {p.headers["ce-type"]: p for p in binary.posts("rest-json")}
    assert set(posts) == {REQUEST, RESPONSE}
    for kind, post in posts.items():
        assert_agent_headers(post, "rest-json", kind, "application/json")
    assert posts[REQUEST].body == body  # as received, spacing and all
    assert posts[RESPONSE].body == r.content  # as answered
    assert go_time(posts[REQUEST].headers["ce-time"]) <= go_time(posts[RESPONSE].headers["ce-time"])
    assert json.loads(posts[RESPONSE].body)["id"] == "client-id-1"


def test_binary_extension_bodies_are_logged_raw(binary: LoggedPredictor) -> None:
    body, header_length = v2_binary_body(ROWS)
    r = binary.infer(
        body,
        "rest-binary",
        **{"content-type": "application/octet-stream", "inference-header-content-length": str(header_length)},
    )
    assert r.status_code == 200, r.text
    assert int(r.headers["inference-header-content-length"]) < len(r.content)  # binary outputs follow
    events = by_type(binary.events("rest-binary", 2))
    assert events[REQUEST].body == body and events[RESPONSE].body == r.content
    for event in events.values():  # the agent puts the request's content type on both events
        assert event.attributes["datacontenttype"] == "application/octet-stream"


def test_v1_exchange_and_a_request_without_content_type(binary: LoggedPredictor) -> None:
    body = json.dumps({"instances": ROWS.tolist()}).encode()
    url = f"{binary.server.http}/v1/models/{binary.server.model}:predict"
    r = httpx.post(url, content=body, headers={"ce-id": "rest-v1"}, timeout=30)  # no Content-Type
    assert r.status_code == 200, r.text
    binary.events("rest-v1", 2)
    posts = {p.headers["ce-type"]: p for p in binary.posts("rest-v1")}
    for kind, post in posts.items():
        assert_agent_headers(post, "rest-v1", kind, None)  # the agent then sends no Content-Type
    assert posts[REQUEST].body == body and posts[RESPONSE].body == r.content
    assert len(json.loads(r.content)["predictions"]) == 3


@pytest.mark.parametrize(
    ("case", "path", "body", "status"),
    [
        (
            "fp64",
            None,
            json.dumps(
                {"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": [1.0] * 10}]}
            ),
            400,
        ),
        ("not-json", None, "{not json", 400),
        ("unknown-model", "/v2/models/no-such-model/infer", v2_body(ROWS[:1]).decode(), 404),
    ],
)
def test_a_refused_request_is_a_request_event_without_response(
    binary: LoggedPredictor, case: str, path: str | None, body: str, status: int
) -> None:
    url = binary.server.http + path if path else binary.server.infer_url
    r = httpx.post(
        url, content=body.encode(), headers={"ce-id": f"refused-{case}", "content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    binary.marker(f"after-{case}")
    events = binary.events(f"refused-{case}", 1, marker=f"after-{case}")
    assert [e.type for e in events] == [REQUEST]
    assert events[0].body == body.encode()


def test_without_ce_id_each_exchange_gets_a_fresh_shared_id(binary: LoggedPredictor) -> None:
    bodies = [v2_body(ROWS[i : i + 1], request_id=f"no-ce-id-{i}") for i in range(2)]
    for body in bodies:
        r = httpx.post(binary.server.infer_url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200
    binary.marker("after-no-ce-id")
    binary.events("after-no-ce-id", 2, marker="after-no-ce-id")
    ids = []
    for body in bodies:
        request = [e for e in binary.recorder.events() if e.type == REQUEST and e.body == body]
        assert len(request) == 1
        pair = [e for e in binary.recorder.events() if e.id == request[0].id]
        assert sorted(e.type for e in pair) == [REQUEST, RESPONSE]
        ids.append(request[0].id)
    assert ids[0] != ids[1]


def test_explainer_calls_are_labelled_and_never_logged(binary: LoggedPredictor) -> None:
    def count(text: str, caller: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if (
                line.startswith("predictor_requests_total{")
                and f'caller="{caller}"' in line
                and 'protocol="rest_v2"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = binary.metrics()
    for i in range(3):
        r = binary.infer(v2_body(ROWS), f"explainer-{i}", **{"x-model-serving-caller": "explainer"})
        assert r.status_code == 200
    r = binary.infer(v2_body(ROWS), "other-caller", **{"x-model-serving-caller": "dashboard"})
    assert r.status_code == 200
    binary.marker("after-explainer")
    after = binary.metrics()
    for i in range(3):
        assert binary.events(f"explainer-{i}", 0, marker="after-explainer") == []
    assert len(binary.events("other-caller", 2)) == 2  # any other value is a client
    assert count(after, "explainer") - count(before, "explainer") == 3
    assert count(after, "client") - count(before, "client") == 2  # "dashboard" and the marker
    assert (
        'predictor_request_duration_seconds_count{caller="explainer",model_name="diabetes-risk",protocol="rest_v2"}'
        in after
    )


def test_batch_format_round_trips(batch: LoggedPredictor) -> None:
    json_body = v2_body(ROWS[:2])
    binary_body, header_length = v2_binary_body(ROWS[:1])
    r1 = batch.infer(json_body, "batch-json")
    r2 = batch.infer(
        binary_body,
        "batch-binary",
        **{"content-type": "application/octet-stream", "inference-header-content-length": str(header_length)},
    )
    assert r1.status_code == r2.status_code == 200
    json_events = by_type(batch.events("batch-json", 2))
    binary_events = by_type(batch.events("batch-binary", 2))
    assert all(
        p.headers["content-type"] == "application/cloudevents-batch+json" for p in batch.recorder.posts
    )
    assert json.loads(json_events[REQUEST].body) == json.loads(json_body)  # carried in "data"
    assert json.loads(json_events[RESPONSE].body) == json.loads(r1.content)
    assert binary_events[REQUEST].body == binary_body  # not JSON: data_base64, byte for byte
    assert binary_events[RESPONSE].body == r2.content
    docs = [doc for p in batch.recorder.posts for doc in json.loads(p.body)]
    doc = next(d for d in docs if d["id"] == "batch-json" and d["type"] == REQUEST)
    assert isinstance(doc["data"], dict) and "data_base64" not in doc
    assert set(doc) == {
        "specversion",
        "id",
        "type",
        "source",
        "time",
        "inferenceservicename",
        "namespace",
        "component",
        "endpoint",
        "metadata",
        "recordedtime",
        "datacontenttype",
        "data",
    }
    assert (doc["specversion"], doc["inferenceservicename"], doc["namespace"], doc["component"]) == (
        "1.0",
        ISVC,
        NAMESPACE,
        "predictor",
    )
    assert doc["endpoint"] == "" and doc["metadata"] == "{}" and doc["datacontenttype"] == "application/json"
    assert go_time(doc["time"]) <= go_time(doc["recordedtime"])
    raw = next(d for d in docs if d["id"] == "batch-binary" and d["type"] == REQUEST)
    assert "data" not in raw and raw["datacontenttype"] == "application/octet-stream"
    assert np.frombuffer(binary_body[header_length:], dtype=np.float32).tolist() == ROWS[0].tolist()
