"""A sample of hostile senders against the real drift detector process over real sockets (the
2,000-case suite runs in process: tests/drift_detector/unit/test_drift_hostile.py): 300 generated
events in every content mode, plus the issue's hand-made cases. No 5xx but 503 + Retry-After."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hardening_stack import Detector, assert_client_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

SAMPLE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20
).map(lambda v: v.strip(" \t"))
ce = st.fixed_dictionaries(
    {},
    optional={
        "ce-specversion": st.just("1.0") | text,
        "ce-id": text,
        "ce-type": st.sampled_from([REQUEST_TYPE, RESPONSE_TYPE]) | text,
        "ce-source": text,
        "ce-inferenceservicename": st.just("diabetes-risk") | text,
        "ce-namespace": st.just("ml") | text,
        "ce-component": st.just("predictor") | text,
        "ce-metadata": text,
        "content-type": st.sampled_from(
            ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"]
        )
        | text,
    },
)
bodies = st.builds(lambda v: json.dumps(v).encode(), values) | st.binary(max_size=80)


@pytest.fixture(scope="module")
def client(detector: Detector) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=detector.url, timeout=30) as c:
        yield c


def _ok(r: httpx.Response, what: str) -> None:
    if r.status_code == 503:
        assert "retry-after" in r.headers, what
        return
    assert_client_error(r.status_code, r.content, what)


@SAMPLE
@given(headers=ce, body=bodies, path=st.sampled_from(["/", "/events", "/status", "/nope"]))
def test_generated_events_over_sockets(
    client: httpx.Client, headers: dict[str, str], body: bytes, path: str
) -> None:
    encoded: Any = {k: v.encode("latin-1") for k, v in headers.items()}
    r = client.post(path, headers=encoded, content=body)
    _ok(r, f"{path} {headers} {body[:100]!r}")


@pytest.mark.parametrize(
    ("what", "content_type", "body", "status"),
    [
        (
            '{"a": + 2,000 [ (binary: taken, rejected by the worker)',
            "application/json",
            b'{"a":' + b"[" * 2000,
            200,
        ),
        ('{"a": + 2,000 [ (structured)', "application/cloudevents+json", b'{"a":' + b"[" * 2000, 400),
        ("100,000-deep [ (batch)", "application/cloudevents-batch+json", b"[" * 100_000, 400),
    ],
)
def test_hand_made_events_over_sockets(
    client: httpx.Client, what: str, content_type: str, body: bytes, status: int
) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "hand",
        "ce-type": REQUEST_TYPE,
        "ce-source": "http://localhost/",
        "ce-inferenceservicename": "diabetes-risk",
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "content-type": content_type,
    }
    r = client.post("/", headers=headers, content=body)
    assert r.status_code == status, f"{what}: {r.status_code} {r.text[:200]}"
    _ok(r, what)
    assert client.get("/ready").status_code == 200
