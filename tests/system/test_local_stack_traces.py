"""Issue 16: ``make up`` shows one trace. A request through Envoy with a W3C ``traceparent`` becomes
one trace in the stack's trace store (``local_stack.tracestore``): the transformer's (or the
explainer's) server span, child of the caller's span, with the predictor's server span below it;
``python -m local_stack trace`` prints it as a tree; bad OTLP bodies are refused with a message.
"""

from __future__ import annotations

import gzip
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status
from local_stack.chart import render
from local_stack.settings import StackSettings
from local_stack.topology import build
from local_stack.tracestore import TraceStore
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from stack_support import LocalStack, wait_for

MODEL = "diabetes-risk"
RECORD = {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
          "ltg": 4.8598, "glu": 87}  # fmt: skip


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def stored(stack: LocalStack, trace_id: str, services: set[str]) -> dict[str, Any]:
    """The trace once spans of every one of ``services`` are in the store (exported ~1 s after)."""

    def check() -> dict[str, Any] | None:
        r = httpx.get(f"{stack.url('traceStore')}/traces/{trace_id}", timeout=5)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        trace: dict[str, Any] = r.json()
        return trace if services <= {s["service"] for s in trace["spans"]} else None

    found: dict[str, Any] = wait_for(f"trace {trace_id} with {sorted(services)}", check, 30, 0.3)
    return found


def trace_ids(stack: LocalStack) -> set[str]:
    listed = httpx.get(f"{stack.url('traceStore')}/traces", params={"limit": 1000}, timeout=5).json()
    return {t["traceId"] for t in listed["traces"]}


def ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    """Span ids from ``span``'s parent up to the first span not in the trace."""
    chain, parent = [], span["parentSpanId"]
    while parent in by_id:
        chain.append(parent)
        parent = by_id[parent]["parentSpanId"]
    return chain


def test_a_prediction_through_envoy_is_one_trace_transformer_then_predictor(stack: LocalStack) -> None:
    trace_id, client_span, header = traceparent()
    r = httpx.post(
        f"{stack.url('envoy')}/v1/models/{MODEL}:predict",
        json={"instances": [RECORD]},
        headers={"traceparent": header, "x-model-version": "stable"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    trace = stored(stack, trace_id, {"transformer", "predictor"})
    spans = trace["spans"]
    by_id = {s["spanId"]: s for s in spans}
    (front,) = [s for s in spans if s["service"] == "transformer"]
    assert front["name"] == f"POST /v1/models/{MODEL}:predict"
    assert front["kind"] == "SERVER"
    assert front["parentSpanId"] == client_span  # the caller's trace, continued through Envoy
    (hop,) = [s for s in spans if s["service"] == "predictor"]
    assert hop["name"] == "ModelInfer"  # the local transformer calls the predictor over grpc-v2
    assert hop["kind"] == "SERVER"
    assert front["spanId"] in ancestors(hop, by_id)  # the predictor's span below the transformer's
    assert hop["traceId"] == front["traceId"] == trace_id
    assert trace["services"] == ["predictor", "transformer"]
    assert trace["spanCount"] == len(spans) == 2
    assert front["startNs"] <= hop["startNs"] <= hop["endNs"] <= front["endNs"]

    # the CLI (`make trace TRACE=...`) prints the tree: the predictor indented under the transformer
    done = stack.cli("trace", trace_id, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"trace {trace_id}  ") and "2 spans  predictor, transformer" in lines[0]
    assert lines[1].startswith(f"└─ transformer  POST /v1/models/{MODEL}:predict  ")
    assert f"(parent {client_span}: the caller, not traced)" in lines[1]
    assert lines[2].startswith("   └─ predictor  ModelInfer  ") and f"model={MODEL}" in lines[2]

    # every span is also a line of <state>/traces.jsonl
    jsonl = (stack.state_dir / "traces.jsonl").read_text().splitlines()
    mine = [json.loads(line) for line in jsonl if trace_id in line]
    assert sorted(s["spanId"] for s in mine) == sorted(by_id)


def test_an_explanation_through_envoy_is_one_trace_explainer_then_predictor(stack: LocalStack) -> None:
    trace_id, client_span, header = traceparent()
    r = httpx.post(
        f"{stack.url('envoy')}/v1/models/{MODEL}:explain",
        json={"instances": [RECORD]},
        headers={"traceparent": header, "x-model-version": "stable"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    trace = stored(stack, trace_id, {"explainer", "predictor"})
    spans = trace["spans"]
    by_id = {s["spanId"]: s for s in spans}
    (front,) = [s for s in spans if s["service"] == "explainer"]
    assert front["name"] == f"POST /v1/models/{MODEL}:explain"
    assert front["parentSpanId"] == client_span
    calls = [s for s in spans if s["service"] == "predictor"]
    assert calls and {c["name"] for c in calls} == {"ModelInfer"}  # the explainer calls over grpc-v2
    assert all(front["spanId"] in ancestors(c, by_id) for c in calls)
    assert {s["service"] for s in spans} == {"explainer", "predictor"}


def test_the_newest_trace_is_the_default_of_make_trace(stack: LocalStack) -> None:
    trace_id, _, header = traceparent()
    r = httpx.post(
        f"{stack.url('envoy')}/v1/models/{MODEL}:predict",
        json={"instances": [RECORD]},
        headers={"traceparent": header},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    stored(stack, trace_id, {"transformer", "predictor"})
    done = stack.cli("trace", "--last", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"trace {trace_id}  ")
    listed = httpx.get(f"{stack.url('traceStore')}/traces", params={"limit": 1}, timeout=5).json()
    assert [t["traceId"] for t in listed["traces"]] == [trace_id]
    assert listed["traces"][0]["root"] == f"transformer: POST /v1/models/{MODEL}:predict"


def test_status_shows_the_trace_store_ready(stack: LocalStack) -> None:
    done = stack.cli("status", "-o", "json", timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)["processes"]}
    assert rows["trace-store"]["state"] == "RUNNING" and rows["trace-store"]["ready"] is True


def _span_without_ids() -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="no ids", start_time_unix_nano=1)
    data: bytes = request.SerializeToString()
    return data


BAD_BODIES = [
    pytest.param(
        b"not protobuf",
        "application/x-protobuf",
        "",
        400,
        "body: not a protobuf ExportTraceServiceRequest",
        id="protobuf-garbage",
    ),
    pytest.param(b"{", "application/json", "", 400, "body: not JSON", id="json-garbage"),
    pytest.param(
        json.dumps(
            {
                "resourceSpans": [
                    {"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "00f067aa0ba902b7"}]}]}
                ]
            }
        ).encode(),
        "application/json",
        "",
        400,
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex digits (OTLP/JSON), got 'xyz'",
        id="json-bad-trace-id",
    ),
    pytest.param(
        json.dumps({"resourceSpans": {"a": 1}}).encode(),
        "application/json",
        "",
        400,
        "body.resourceSpans: expected a JSON array, got dict",
        id="json-not-a-list",
    ),
    pytest.param(
        _span_without_ids(),
        "application/x-protobuf",
        "",
        400,
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 16 bytes, not all zero, got ''",
        id="protobuf-span-without-ids",
    ),
    pytest.param(
        b"x",
        "text/plain",
        "",
        415,
        "Content-Type 'text/plain': expected application/x-protobuf",
        id="content-type",
    ),
    pytest.param(
        b"x",
        "application/x-protobuf",
        "gzip",
        400,
        "body: Content-Encoding gzip but not complete gzip data",
        id="gzip-one-byte",
    ),
    pytest.param(
        b"x" * 20,
        "application/json",
        "gzip",
        400,
        "body: Content-Encoding gzip but not gzip data (",
        id="not-gzip-header",
    ),
    pytest.param(
        gzip.compress(b"{}")[:-4],
        "application/json",
        "gzip",
        400,
        "body: Content-Encoding gzip but not complete gzip data (truncated)",
        id="gzip-truncated",
    ),
    pytest.param(
        gzip.compress(b" " * (9 * 1024 * 1024)),
        "application/json",
        "gzip",
        413,
        "body: more than 8388608 bytes once decompressed",
        id="gzip-bomb",
    ),
    pytest.param(
        gzip.compress(b"not protobuf"),
        "application/x-protobuf",
        "gzip",
        400,
        "body: not a protobuf",
        id="gzip-garbage",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "encoding", "status", "message"), BAD_BODIES)
def test_bad_otlp_bodies_are_refused_with_a_message(
    stack: LocalStack, body: bytes, content_type: str, encoding: str, status: int, message: str
) -> None:
    headers = {"content-type": content_type, **({"content-encoding": encoding} if encoding else {})}
    before = trace_ids(stack)
    r = httpx.post(f"{stack.url('traceStore')}/v1/traces", content=body, headers=headers, timeout=5)
    assert r.status_code == status, r.text
    if r.headers["content-type"] == "application/x-protobuf":  # OTLP/HTTP: a google.rpc.Status
        answer = Status.FromString(r.content)
        got = (answer.code, answer.message)
    else:
        got = (r.json()["code"], r.json()["message"])
    assert got[0] == 3 and message in got[1], got  # INVALID_ARGUMENT
    assert trace_ids(stack) == before  # nothing stored


def test_good_otlp_json_is_stored_and_queries_are_checked(stack: LocalStack) -> None:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    export = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "by-hand"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "step", "kind": 2,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
            "status": {"code": 2, "message": "boom"},
            "attributes": [{"key": "rows", "value": {"intValue": "3"}}],
        }]}],
    }]}  # fmt: skip
    r = httpx.post(f"{stack.url('traceStore')}/v1/traces", json=export, timeout=5)
    assert (r.status_code, r.json()) == (200, {})
    trace = httpx.get(f"{stack.url('traceStore')}/traces/{trace_id.upper()}", timeout=5).json()
    (span,) = trace["spans"]
    assert (span["service"], span["name"], span["kind"], span["durationMs"]) == (
        "by-hand",
        "step",
        "SERVER",
        250.0,
    )
    assert (span["status"], span["statusMessage"], span["attributes"]) == ("ERROR", "boom", {"rows": 3})
    assert trace["start"] == "2023-11-14T22:13:20.000Z"

    r = httpx.get(f"{stack.url('traceStore')}/traces/not-a-trace", timeout=5)
    assert (r.status_code, r.json()["error"]) == (400, "trace id 'not-a-trace': expected 32 hex digits")
    r = httpx.get(f"{stack.url('traceStore')}/traces/{'0' * 31}1", timeout=5)
    assert r.status_code == 404 and "is not in the store" in r.json()["error"]
    r = httpx.get(f"{stack.url('traceStore')}/traces", params={"limit": "0"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("limit='0': expected an integer from 1 to ")


# without a running stack ---------------------------------------------------------------------------


def test_every_component_exports_to_the_trace_store(
    gbm_bundle: Path, mlp_bundle: Path, tmp_path: Path
) -> None:
    """The stack points each component's ``<PREFIX>_OTLP_ENDPOINT`` at its trace store, even over a
    collector the chart's values name."""
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    (bundles / "gbm").symlink_to(gbm_bundle)
    (bundles / "mlp").symlink_to(mlp_bundle)
    settings = StackSettings(
        state_dir=tmp_path / "state", bundles=bundles, namespace="local", ports={"trace-store": 14318},
        helm_set=["tracing.otlpEndpoint=http://otel-collector.monitoring:4318"],
    )  # fmt: skip
    programs = {p.name: p for p in build(render(settings), settings).programs}
    for track in ("stable", "canary"):
        for component in ("predictor", "transformer", "explainer"):
            env = programs[f"{track}-{component}"].env
            assert env[f"{component.upper()}_OTLP_ENDPOINT"] == "http://127.0.0.1:14318"
    assert not any("OTLP" in k for k in programs["drift-detector"].env)  # it does not trace


def _span(trace_id: str, n: int) -> dict[str, Any]:
    return {"traceId": trace_id, "spanId": f"{n:016x}", "parentSpanId": "", "service": "s", "name": f"n{n}",
            "kind": "SERVER", "startNs": 10 + n, "endNs": 20 + n, "durationMs": 1e-5, "status": "UNSET",
            "statusMessage": "", "attributes": {}}  # fmt: skip


def test_the_store_keeps_only_the_newest_traces(tmp_path: Path) -> None:
    store = TraceStore(keep=2, path=tmp_path / "traces.jsonl")
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    store.add([_span(a, 1)])
    store.add([_span(b, 2)])
    store.add([_span(a, 3)])  # a is newest again
    store.add([_span(c, 4)])  # b goes
    assert store.get(b) is None
    assert [s["name"] for s in store.get(a)["spans"]] == ["n1", "n3"]  # type: ignore[index]
    assert [t["traceId"] for t in store.summaries(10)] == [c, a]  # newest start first
    lines = (tmp_path / "traces.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["n1", "n2", "n3", "n4"]  # the file keeps all


def test_the_store_bounds_spans_in_all_and_per_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    import local_stack.tracestore as tracestore

    monkeypatch.setattr(tracestore, "MAX_TOTAL_SPANS", 3)
    monkeypatch.setattr(tracestore, "MAX_SPANS", 2)
    store = TraceStore(keep=100)
    a, b = "a" * 32, "b" * 32
    store.add([_span(a, 1), _span(a, 2), _span(a, 3)])  # the third is over the per-trace bound
    trace = store.get(a)
    assert trace is not None and (trace["spanCount"], trace["droppedSpans"]) == (2, 1)
    store.add([_span(b, 4), _span(b, 5)])  # 4 spans in all > 3: the oldest trace goes
    assert store.get(a) is None
    assert [t["traceId"] for t in store.summaries(10)] == [b]
