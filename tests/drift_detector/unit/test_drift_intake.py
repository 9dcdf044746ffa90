"""The intake in process: bodies as the agent forwards them, the ce-id join, explainer marks."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from drift_detector.binary import decode as binary_decode
from drift_detector.body import decode
from drift_detector.cloudevent import StreamKey, batch_events, binary_event
from drift_detector.errors import BadEvent, Ignored, PayloadTooLarge
from drift_detector.joiner import Joiner
from serving_common.cloudevents import REQUEST_TYPE

KEY = StreamKey("ml", "income", "predictor")
OTHER = StreamKey("ml", "income-canary", "predictor")


def test_gzip_bodies_are_recognised_by_their_magic_bytes() -> None:
    document = {"instances": [[1.0, 2.0]]}
    assert decode(gzip.compress(json.dumps(document).encode()), 1 << 20) == document


def test_a_gzip_body_inflating_beyond_the_limit_is_too_large() -> None:
    bomb = gzip.compress(b'{"instances": [' + b"0," * 100_000 + b"0]}")
    assert len(bomb) < 2048
    with pytest.raises(PayloadTooLarge, match="inflates beyond DRIFT_MAX_BODY_BYTES=4096"):
        decode(bomb, 4096)


def test_nan_and_infinity_literals_are_read() -> None:
    document = decode(b'{"instances": [[NaN, Infinity, -Infinity, 1.5]]}', 1 << 20)
    values = np.asarray(document["instances"], dtype=np.float32)
    assert (
        np.isnan(values[0, 0]) and values[0, 1] == np.inf and values[0, 2] == -np.inf and values[0, 3] == 1.5
    )


def test_binary_extension_with_and_without_the_header_length() -> None:
    raw = np.arange(6, dtype="<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {"name": "input", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": 24}}
            ]
        }
    ).encode()
    body = header + raw
    for length in (None, len(header)):
        document = decode(body, 1 << 20, length)
        assert document["inputs"][0]["data"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert binary_decode(header + raw[:-4]) is None  # short by one value: not this extension
    with pytest.raises(BadEvent, match="body is not JSON") as info:
        decode(header + raw[:-4], 1 << 20)
    assert info.value.reason == "not_json"


def rows(n: int, value: float = 1.0) -> np.ndarray:
    return np.full((n, 2), value, dtype=np.float32)


def test_a_request_enters_only_with_its_response_in_either_order() -> None:
    joiner = Joiner(timeout=60.0, capacity=100)
    assert joiner.request("a", KEY, rows(2), now=0.0) == (None, [])
    held = joiner.response("a", now=1.0)
    assert held is not None and held[0] == KEY and held[1].shape == (2, 2)
    assert joiner.response("b", now=1.0) is None  # the response first
    joined, forgotten = joiner.request("b", OTHER, rows(3), now=2.0)
    assert joined is not None and joined.shape == (3, 2) and forgotten == []
    assert joiner.held == 0


def test_unanswered_requests_are_forgotten_after_the_timeout() -> None:
    joiner = Joiner(timeout=10.0, capacity=100)
    joiner.request("a", KEY, rows(1), now=0.0)
    joiner.request("b", OTHER, rows(1), now=5.0)
    assert joiner.expire(now=9.9) == []
    assert joiner.expire(now=10.0) == [KEY]
    assert joiner.expire(now=15.0) == [OTHER]
    assert joiner.response("a", now=16.0) is None  # too late: its rows are gone
    joined, _ = joiner.request("a", KEY, rows(1), now=17.0)  # ...and that early response joins a reuse
    assert joined is not None


def test_capacity_forgets_the_oldest_request_and_a_reused_id_replaces_its_request() -> None:
    joiner = Joiner(timeout=60.0, capacity=2)
    joiner.request("a", KEY, rows(1), now=0.0)
    joiner.request("b", KEY, rows(1), now=0.0)
    assert joiner.request("c", OTHER, rows(1), now=0.0) == (None, [KEY])
    assert joiner.request("c", OTHER, rows(1, 2.0), now=1.0) == (None, [OTHER])
    held = joiner.response("c", now=2.0)
    assert held is not None and float(held[1][0, 0]) == 2.0


HEADERS = [
    (b"ce-specversion", b"1.0"),
    (b"ce-id", b"e1"),
    (b"ce-type", REQUEST_TYPE.encode()),
    (b"ce-source", b"http://localhost:9081/"),
    (b"ce-inferenceservicename", b"income"),
]


@pytest.mark.parametrize(
    ("metadata", "ignored"),
    [
        (b'{"X-Model-Serving-Caller":["explainer"]}', True),  # what the agent writes
        (b'{"x-model-serving-caller":["Explainer"]}', True),
        (b'{"X-Model-Serving-Caller":"explainer"}', True),
        (b'{"X-Model-Serving-Caller":["client"]}', False),
        (b'{"X-Other":["explainer"]}', False),
        (b"{}", False),
        (b"explainer, not JSON", False),
    ],
)
def test_explainer_calls_are_recognised_in_ce_metadata(metadata: bytes, ignored: bool) -> None:
    headers = [*HEADERS, (b"ce-metadata", metadata)]
    if ignored:
        with pytest.raises(Ignored, match="explainer call") as info:
            binary_event(headers, b"{}")
        assert info.value.reason == "explainer"
    else:
        assert binary_event(headers, b"{}").key == StreamKey("", "income", "")


def test_batch_events_keep_their_index() -> None:
    good = {"specversion": "1.0", "id": "a", "type": REQUEST_TYPE, "source": "s", "inferenceservicename": "i"}
    events, problems = batch_events(
        json.dumps(
            [good, {**good, "specversion": "0.3"}, {**good, "id": "b", "data": {"instances": [[1]]}}]
        ).encode()
    )
    assert [(i, type(p).__name__, p.reason) for i, p in problems] == [
        (0, "Ignored", "empty"),
        (1, "BadEvent", "malformed_event"),
    ]
    assert [(i, e.id, e.data) for i, e in events] == [(2, "b", {"instances": [[1]]})]
