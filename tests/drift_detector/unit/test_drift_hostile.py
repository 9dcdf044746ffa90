"""Hostile senders against the detector's app in process (ASGI): 2,000 generated events (binary,
structured and batch content modes, junk envelopes and bodies, deep JSON, gzip, binary extension)
and issue 15's hand-made cases. No answer is a 5xx other than 503 (queue full / loading, with
``Retry-After``); every 4xx names the problem; bodies that pass the door and fail later are counted
as rejections, and the worker never meets an exception it did not foresee."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from drift_detector.app import DriftService, create_app
from drift_detector.settings import Settings
from drift_population import SPEC, write_bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

CASES = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
NAMES = [f.name for f in SPEC.features]


class Harness:
    def __init__(self, bundle: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(
            Settings(model_dir=bundle, backend="scipy", max_body_bytes=64 * 1024, max_inference_services=8)
        )
        self.service: DriftService = self.app.state.service
        self.loop.run_until_complete(self._start())
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://drift")

    async def _start(self) -> None:
        await self.service.start()
        assert self.service._load_task is not None
        await self.service._load_task
        assert self.service.detector is not None

    def post(self, headers: dict[str, str], body: bytes, path: str = "/") -> httpx.Response:
        encoded = {k: v.encode("latin-1") for k, v in headers.items()}
        return self.loop.run_until_complete(self.client.post(path, headers=encoded, content=body))

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(path))

    def idle(self) -> None:
        detector = self.service.detector
        assert detector is not None

        async def wait() -> None:
            async with asyncio.timeout(30):
                await detector.wait_idle()

        self.loop.run_until_complete(wait())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.service.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(write_bundle(tmp_path_factory.mktemp("hostile") / "bundle"))
    yield h
    h.close()


def assert_answered(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500 or (r.status_code == 503 and "retry-after" in r.headers), (
        f"{what}: {r.status_code}"
    )
    if r.status_code >= 400:
        error = r.json()["error"]
        assert isinstance(error, str) and len(error) > 5 and "0x" not in error, f"{what}: {r.text[:300]}"


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=15,
)
records = st.lists(
    st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=4), scalars, max_size=len(NAMES) + 2),
    max_size=4,
)
documents = st.one_of(
    st.fixed_dictionaries(
        {"instances": st.lists(st.lists(scalars, max_size=12), max_size=4) | records | values}
    ),
    st.fixed_dictionaries(
        {
            "inputs": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": st.sampled_from(["input", "records", *NAMES]) | values,
                        "shape": st.lists(st.integers(-2, 2**40), max_size=3) | values,
                        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "x"]) | values,
                        "data": st.lists(scalars, max_size=25) | values,
                    },
                ),
                max_size=3,
            )
            | values
        }
    ),
    st.fixed_dictionaries({"predictions": st.lists(st.lists(st.floats(), max_size=3) | scalars, max_size=4)}),
    st.fixed_dictionaries(
        {
            "outputs": st.lists(
                st.fixed_dictionaries({"name": st.text(max_size=8), "data": values}), max_size=2
            )
        }
    ),
    values,
)


def _encode(document: Any, how: str) -> bytes:
    raw = json.dumps(document).encode()  # NaN literals included
    if how == "gzip":
        return gzip.compress(raw)
    if how == "truncated":
        return raw[: len(raw) // 2]
    return raw


bodies = st.one_of(
    st.builds(_encode, documents, st.sampled_from(["json", "json", "gzip", "truncated"])),
    st.binary(max_size=100),
    st.builds(lambda n, c: c * n, st.integers(1, 3000), st.sampled_from([b"[", b"{", b'{"a":'])),
    st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=40)),
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30).map(
    lambda v: v.strip(" \t")
)
ce_headers = st.fixed_dictionaries(
    {},
    optional={
        "ce-specversion": st.sampled_from(["1.0", "0.3"]) | header_text,
        "ce-id": header_text,
        "ce-type": st.sampled_from([REQUEST_TYPE, RESPONSE_TYPE]) | header_text,
        "ce-source": header_text,
        "ce-inferenceservicename": st.sampled_from(["income", "income-canary"]) | header_text,
        "ce-namespace": st.sampled_from(["ml"]) | header_text,
        "ce-component": st.sampled_from(["predictor", "transformer"]) | header_text,
        "ce-metadata": st.sampled_from(['{"X-Model-Serving-Caller":["explainer"]}', "{}", "[", "null"])
        | header_text,
        "content-type": st.sampled_from(["application/json", "application/octet-stream"]) | header_text,
        "inference-header-content-length": st.integers(-3, 200).map(str) | header_text,
    },
)


def _structured(attrs: dict[str, Any], data: Any, key: str) -> dict[str, Any]:
    return {**attrs, key: data}


envelopes = st.builds(
    _structured,
    st.fixed_dictionaries(
        {},
        optional={
            "specversion": st.sampled_from(["1.0"]) | values,
            "id": st.text(max_size=6) | values,
            "type": st.sampled_from([REQUEST_TYPE, RESPONSE_TYPE]) | values,
            "source": st.text(max_size=6) | values,
            "inferenceservicename": st.sampled_from(["income"]) | values,
            "namespace": st.just("ml") | values,
            "component": st.just("predictor") | values,
            "datacontenttype": st.sampled_from(["application/json", "text/plain"]) | values,
            "metadata": values,
        },
    ),
    documents | values,
    st.sampled_from(["data", "data_base64"]),
)


@CASES
@given(
    mode=st.sampled_from(["binary", "binary", "structured", "batch"]),
    headers=ce_headers,
    body=bodies,
    structured=envelopes,
    batch=st.lists(envelopes | values, max_size=4) | values,
)
def test_generated_events_are_answered_without_server_errors(
    harness: Harness, mode: str, headers: dict[str, str], body: bytes, structured: Any, batch: Any
) -> None:
    if mode == "structured":
        headers, body = {"content-type": "application/cloudevents+json"}, json.dumps(structured).encode()
    elif mode == "batch":
        headers, body = {"content-type": "application/cloudevents-batch+json"}, json.dumps(batch).encode()
    r = harness.post(headers, body)
    assert_answered(r, f"{mode} {headers} {body[:200]!r}")


def test_the_worker_met_no_unforeseen_body(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Runs after the generated cases: every body they queued is decoded without a crash."""
    with caplog.at_level(logging.ERROR, logger="drift_detector"):
        harness.idle()
    status = harness.get("/status").json()
    assert status["ready"] is True
    assert [r for r in status["rejections"] if "could not be read" in r["error"]] == []


def _binary(isvc: str, body: bytes, **extra: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-type": REQUEST_TYPE,
        "ce-source": "http://localhost/",
        "ce-inferenceservicename": isvc,
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "content-type": "application/json",
        **extra,
    }


@pytest.mark.parametrize(
    ("what", "body", "content_type", "status"),
    [
        ('{"a": + 2,000 [ (binary)', b'{"a":' + b"[" * 2000, "application/json", 200),
        ('{"a": + 2,000 [ (structured)', b'{"a":' + b"[" * 2000, "application/cloudevents+json", 400),
        ('{"a": + 2,000 [ (batch)', b'{"a":' + b"[" * 2000, "application/cloudevents-batch+json", 400),
        ("60,000-deep [ (batch)", b"[" * 60_000, "application/cloudevents-batch+json", 400),
        ("60,000-deep [ (structured)", b"[" * 60_000, "application/cloudevents+json", 400),
        ("NaN in a structured envelope", b'{"specversion": NaN}', "application/cloudevents+json", 400),
        ("body over the limit", b"0" * (65 * 1024), "application/json", 413),
    ],
)
def test_hand_made_events(harness: Harness, what: str, body: bytes, content_type: str, status: int) -> None:
    r = harness.post(_binary("income", body, **{"content-type": content_type}), body)
    assert r.status_code == status, f"{what}: {r.status_code} {r.text[:300]}"
    assert_answered(r, what)


def test_deep_json_in_a_binary_event_is_rejected_by_the_worker_not_crashed(harness: Harness) -> None:
    body = b'{"a":' + b"[" * 2000
    r = harness.post(_binary("income", body, **{"ce-id": "deep-1"}), body)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    harness.idle()
    rejections = [x for x in harness.get("/status").json()["rejections"] if x["id"] == "deep-1"]
    assert rejections and rejections[-1]["reason"] == "not_json", rejections


def test_twenty_thousand_headers_are_431(harness: Harness) -> None:
    headers = {f"x-h{i}": "v" for i in range(20_000)}
    r = harness.post(headers, b"{}")
    assert r.status_code == 431 and "DRIFT_MAX_HEADERS=100" in r.json()["error"]


def test_junk_names_cannot_lock_out_a_real_inference_service(tmp_path: Path) -> None:
    """Slots of streams idle for DRIFT_STREAM_IDLE_SECONDS are given to new streams."""
    h = Harness.__new__(Harness)
    h.loop = asyncio.new_event_loop()
    h.app = create_app(
        Settings(
            model_dir=write_bundle(tmp_path / "bundle"),
            backend="scipy",
            max_inference_services=3,
            stream_idle_seconds=0.2,
        )
    )
    h.service = h.app.state.service
    h.loop.run_until_complete(h._start())
    h.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.app), base_url="http://drift")
    try:
        row = orjson.dumps({"instances": [[0.0] * len(NAMES)]})
        for i in range(3):
            assert h.post(_binary(f"junk-{i}", row, **{"ce-id": f"j{i}"}), row).status_code == 200
        h.idle()
        assert len(h.get("/status").json()["streams"]) == 3
        h.loop.run_until_complete(asyncio.sleep(0.3))  # the junk streams are idle now
        assert h.post(_binary("income", row, **{"ce-id": "real"}), row).status_code == 200
        h.idle()
        status = h.get("/status").json()
        names = sorted(s["inferenceservice"] for s in status["streams"])
        assert names == ["income"], status["streams"]
        assert not [r for r in status["rejections"] if r["reason"] == "too_many_inferenceservices"]
        metrics = h.get("/metrics").text
        assert 'inferenceservice="junk-0"' not in metrics and 'inferenceservice="income"' in metrics
    finally:
        h.close()
