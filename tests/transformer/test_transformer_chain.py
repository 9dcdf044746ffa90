"""Transformer -> predictor across real processes: skew, validation, errors, headers, metrics, logger."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from fake_predictor import FAIL_MESSAGE, REJECT_MESSAGE
from kserve.inference_client import InferenceGRPCClient
from kserve.protocol.infer_type import InferInput, InferRequest
from prometheus_client.parser import text_string_to_metric_families
from serving_common import Bundle, FeatureSpec
from transformer_stack import FAKE_TIMEOUT, MODEL, PREDICTOR_MAX_ROWS, Stack

RECORD = {
    "age": 59.0, "sex": "female", "bmi": 32.1, "bp": 101.0, "tc": 157.0,
    "ldl": 93.2, "hdl": 38.0, "tch": 4.0, "ltg": 4.8598, "glu": 87.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def spec(gbm_bundle: Path) -> FeatureSpec:
    return Bundle.open(gbm_bundle).spec()


@pytest.fixture(scope="module")
def held_out() -> list[dict[str, Any]]:
    from training import data

    return data.load(7).test_records  # the seed train_bundle uses


@pytest.fixture(scope="module")
def reference(
    gbm_bundle: Path, spec: FeatureSpec, held_out: list[dict[str, Any]]
) -> tuple[list[str], np.ndarray]:
    """The training pipeline's answer: training's records through the shared vectoriser and the
    bundle's ONNX graph, in process. One onnxruntime thread, as the predictor runs by default
    (PREDICTOR_INTRA_OP_THREADS=1): more threads add the trees' outputs in another order and
    move probabilities by 1 ulp, and this test asks for bit-for-bit equality."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(gbm_bundle / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    label, proba = session.run(["label", "probabilities"], {"input": spec.vectorise(held_out)})
    return [spec.classes[i] for i in label], proba


@pytest.fixture(autouse=True)
def _fake_ok(stack: Stack) -> Any:
    stack.fake.mode = "ok"
    yield
    stack.fake.mode = "ok"


def columns(records: list[dict[str, Any]], spec: FeatureSpec) -> list[InferInput]:
    """One V2 input per feature: FP64 numbers (NaN when missing), BYTES categories."""
    out = []
    for f in spec.features:
        values = [r.get(f.name) for r in records]
        if f.type == "categorical":
            out.append(InferInput(f.name, [len(values)], "BYTES", [str(v) for v in values]))
        else:
            out.append(
                InferInput(f.name, [len(values)], "FP64", [np.nan if v is None else v for v in values])
            )
    return out


def v2_json(inputs: list[InferInput]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": i.name,
                "shape": i.shape,
                "datatype": i.datatype,
                "data": [None if x != x else x for x in i.data],
            }
            for i in inputs
        ]
    }


def v2_output(body: dict[str, Any], name: str) -> list[Any]:
    return next(o["data"] for o in body["outputs"] if o["name"] == name)


async def grpc_infer(host: str, request: InferRequest, headers: tuple[tuple[str, str], ...] = ()) -> Any:
    client = InferenceGRPCClient(host, retries=0, timeout=30)
    try:
        return await client.infer(request, headers=headers)
    finally:
        await client.close()


# --- skew: every held-out record, both hops, every protocol ------------------------------------


@pytest.mark.parametrize("hop", ["grpc", "rest", "v1"])
def test_every_held_out_record_matches_the_training_pipeline(
    stack: Stack, hop: str, held_out: list[dict[str, Any]], reference: tuple[list[str], np.ndarray]
) -> None:
    labels, proba = reference
    server = getattr(stack, hop)
    r = httpx.post(
        server.v1, json={"instances": held_out}, headers={"x-request-id": f"skew-{hop}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == MODEL and body["model_version"] == "gbm-1" and body["id"] == f"skew-{hop}"
    got = body["predictions"]
    assert len(got) == len(held_out) == 111
    assert [p["label"] for p in got] == labels
    got_proba = np.array([[p["probabilities"]["low_risk"], p["probabilities"]["high_risk"]] for p in got])
    np.testing.assert_array_equal(got_proba.astype(np.float32), proba)  # exact, not approximately
    picked = proba[np.arange(len(labels)), [1 if label == "high_risk" else 0 for label in labels]]
    np.testing.assert_array_equal(np.array([p["probability"] for p in got], dtype=np.float32), picked)


def test_v2_columns_over_rest_match_the_training_pipeline(
    stack: Stack, spec: FeatureSpec, held_out: list[dict[str, Any]], reference: tuple[list[str], np.ndarray]
) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{stack.rest.http_port}")
    try:
        inputs = []
        for inp in columns(held_out, spec):
            t = triton.InferInput(inp.name, inp.shape, inp.datatype)
            dtype = np.object_ if inp.datatype == "BYTES" else np.float64
            t.set_data_from_numpy(np.array(inp.data, dtype=dtype), binary_data=False)
            inputs.append(t)
        result = client.infer(MODEL, inputs, request_id="triton-1")
    finally:
        client.close()
    assert result.get_response()["id"] == "triton-1"
    assert [s.decode() for s in result.as_numpy("label")] == reference[0]
    np.testing.assert_array_equal(result.as_numpy("probabilities"), reference[1])


async def test_v2_columns_over_grpc_match_the_training_pipeline(
    stack: Stack, spec: FeatureSpec, held_out: list[dict[str, Any]], reference: tuple[list[str], np.ndarray]
) -> None:
    request = InferRequest(MODEL, columns(held_out, spec), request_id="grpc-columns")
    response = await grpc_infer(stack.grpc.grpc, request)
    assert response.id == "grpc-columns" and response.model_version == "gbm-1"
    labels = [
        v.decode() if isinstance(v, bytes) else v for v in response.get_output_by_name("label").as_numpy()
    ]
    assert labels == reference[0]
    np.testing.assert_array_equal(response.get_output_by_name("probabilities").as_numpy(), reference[1])


def test_v2_json_records_input_gives_the_v1_answer(stack: Stack) -> None:
    records = [RECORD, {**RECORD, "age": 30.0, "sex": "male"}]
    v1 = httpx.post(stack.grpc.v1, json={"instances": records}, timeout=30).json()["predictions"]
    body = {
        "inputs": [
            {"name": "records", "datatype": "BYTES", "shape": [2], "data": [json.dumps(r) for r in records]}
        ]
    }
    r = httpx.post(stack.grpc.v2, json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert v2_output(r.json(), "label") == [p["label"] for p in v1]
    assert v2_output(r.json(), "probability") == [p["probability"] for p in v1]


def test_missing_serum_value_is_imputed_with_the_training_median(stack: Stack, spec: FeatureSpec) -> None:
    median = spec.feature("glu").missing.value
    without = {k: v for k, v in RECORD.items() if k != "glu"}
    r = httpx.post(
        stack.rest.v1,
        json={"instances": [without, {**RECORD, "glu": None}, {**RECORD, "glu": median}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    p = r.json()["predictions"]
    assert p[0] == p[1] == p[2]
    # NaN literals (Python's json.dumps, tritonclient) are missing values too, in V1 and V2
    nan_v1 = json.dumps({"instances": [{**RECORD, "glu": float("nan")}]})
    r = httpx.post(stack.rest.v1, content=nan_v1, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0] == p[0]
    body = v2_json(columns([{**RECORD, "glu": None}], spec))
    r = httpx.post(stack.rest.v2, content=json.dumps(body).replace("null", "NaN"), timeout=30)
    assert r.status_code == 200, r.text
    assert v2_output(r.json(), "probability") == [p[0]["probability"]]


# --- validation: one 400 naming every problem ---------------------------------------------------


def test_every_problem_of_every_record_in_one_400(stack: Stack) -> None:
    bad = [
        {k: v for k, v in RECORD.items() if k != "age"},  # 0: missing required field
        {**RECORD, "bmi": "thirty"},  # 1: wrong type
        {**RECORD, "bp": 400.0},  # 2: out of range
        {**RECORD, "sex": "unknown"},  # 3: unknown category
        {**RECORD, "smoker": True},  # 4: unexpected field
        RECORD,  # 5: fine
        ["not", "an", "object"],  # 6
        {**RECORD, "age": -1.0, "sex": 1},  # 7: two problems
    ]
    for server in (stack.grpc, stack.rest):
        r = httpx.post(server.v1, json={"instances": bad}, timeout=30)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        for expected in (
            "record 0, field 'age': is missing",
            "record 1, field 'bmi': has type str",
            "record 2, field 'bp': value 400.0 is out of range",
            "record 3, field 'sex': unknown category 'unknown'",
            "record 4, field 'smoker': is not a feature of this model",
            "record 6, field '*': is a list",
            "record 7, field 'age': value -1.0 is out of range",
            "record 7, field 'sex': has type int",
        ):
            assert expected in error, (expected, error)
        assert "record 5" not in error
        assert error.startswith("8 problem(s) in 7 of 8 record(s)")


def test_v2_column_problems_name_record_and_field(stack: Stack, spec: FeatureSpec) -> None:
    inputs = columns([RECORD, {**RECORD, "age": 130.0}], spec)
    body = v2_json(inputs)
    for i in body["inputs"]:
        if i["name"] == "sex":
            i["data"] = ["female", "other"]
    body["inputs"].append({"name": "weight", "datatype": "FP64", "shape": [2], "data": [70.0, 80.0]})
    r = httpx.post(stack.rest.v2, json=body, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert "record 1, field 'age': value 130.0 is out of range" in error
    assert "record 1, field 'sex': unknown category 'other'" in error
    assert "record 0, field 'weight': is not a feature" in error and "record 1, field 'weight'" in error


async def test_invalid_records_over_grpc_are_invalid_argument(stack: Stack, spec: FeatureSpec) -> None:
    request = InferRequest(MODEL, columns([{**RECORD, "bmi": 5.0}], spec))
    with pytest.raises(grpc.RpcError) as err:
        await grpc_infer(stack.grpc.grpc, request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "record 0, field 'bmi': value 5.0 is out of range" in err.value.details()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the request body is not JSON"),
        ({"instances": {"age": 1}}, "'instances' must be a list"),
        ({"instances": []}, "holds no records"),
        ({"rows": [RECORD]}, '{"instances": [record, ...]}'),
    ],
)
def test_bad_v1_bodies_are_400(stack: Stack, body: Any, message: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(stack.rest.v1, content=content, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            [
                {"name": "age", "datatype": "FP64", "shape": [2], "data": [50.0, 60.0]},
                {"name": "bmi", "datatype": "FP64", "shape": [1], "data": [30.0]},
            ],
            "'age' has 2, 'bmi' has 1",
        ),
        (
            [{"name": "records", "datatype": "BYTES", "shape": [1], "data": ["{oops"]}],
            "element 0 is not valid JSON",
        ),
        (
            [{"name": "age", "datatype": "FP64", "shape": [1, 2], "data": [50.0, 60.0]}],
            "a column is [n] or [n, 1]",
        ),
    ],
)
def test_bad_v2_bodies_are_400(stack: Stack, inputs: list[dict[str, Any]], message: str) -> None:
    r = httpx.post(stack.rest.v2, json={"inputs": inputs}, timeout=30)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


# --- predictor failures keep their meaning ------------------------------------------------------


@pytest.mark.parametrize("hop", ["grpc", "rest", "v1"])
def test_real_predictor_400_stays_400_with_its_message(stack: Stack, hop: str) -> None:
    r = httpx.post(
        getattr(stack, hop).v1, json={"instances": [RECORD] * (PREDICTOR_MAX_ROWS + 1)}, timeout=30
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith("the predictor rejected the request: ")
    assert str(PREDICTOR_MAX_ROWS) in error and str(PREDICTOR_MAX_ROWS + 1) in error


@pytest.mark.parametrize("hop", ["fake_grpc", "fake_rest"])
def test_predictor_rejection_stays_400(stack: Stack, hop: str) -> None:
    stack.fake.mode = "reject"
    r = httpx.post(getattr(stack, hop).v1, json={"instances": [RECORD]}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == f"the predictor rejected the request: {REJECT_MESSAGE}"


@pytest.mark.parametrize("hop", ["fake_grpc", "fake_rest"])
def test_predictor_failure_is_502_with_its_message(stack: Stack, hop: str) -> None:
    stack.fake.mode = "fail"
    r = httpx.post(getattr(stack, hop).v1, json={"instances": [RECORD]}, timeout=30)
    assert r.status_code == 502, r.text
    assert FAIL_MESSAGE in r.json()["error"]


@pytest.mark.parametrize("hop", ["fake_grpc", "fake_rest"])
def test_slow_predictor_is_504_within_the_timeout(stack: Stack, hop: str) -> None:
    stack.fake.mode, stack.fake.delay = "slow", 5.0
    start = time.monotonic()
    r = httpx.post(getattr(stack, hop).v1, json={"instances": [RECORD]}, timeout=30)
    elapsed = time.monotonic() - start
    assert r.status_code == 504, r.text
    assert f"did not answer within {FAKE_TIMEOUT:g} s" in r.json()["error"]
    assert FAKE_TIMEOUT * 0.9 <= elapsed < FAKE_TIMEOUT + 1.5


def test_unreachable_predictor_is_503_within_the_timeout(stack: Stack) -> None:
    start = time.monotonic()
    r = httpx.post(stack.down.v1, json={"instances": [RECORD]}, timeout=30)
    assert r.status_code == 503, r.text
    assert "is unavailable" in r.json()["error"]
    assert time.monotonic() - start < FAKE_TIMEOUT + 1.5


async def test_unreachable_predictor_over_grpc_is_unavailable(stack: Stack, spec: FeatureSpec) -> None:
    with pytest.raises(grpc.RpcError) as err:
        await grpc_infer(stack.down.grpc, InferRequest(MODEL, columns([RECORD], spec)))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "is unavailable" in err.value.details()


# --- headers, metrics, payload logger -----------------------------------------------------------

TRACE_HEADERS = {
    "x-request-id": "req-42",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "congo=t61rcWkgMzE",
    "authorization": "Bearer token-1",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "0",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
}


@pytest.mark.parametrize("hop", ["fake_grpc", "fake_rest"])
def test_trace_and_auth_headers_reach_the_predictor(stack: Stack, hop: str) -> None:
    stack.fake.seen.clear()
    r = httpx.post(
        getattr(stack, hop).v1,
        json={"instances": [RECORD]},
        headers={
            **TRACE_HEADERS,
            "x-private": "stays here",
            "cookie": "session=1",
            "x-model-serving-caller": "explainer",  # only the explainer marks its calls (C1)
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "req-42"
    # the served version travels back over either hop
    assert r.json()["model_version"] == "fake-1"
    seen = stack.fake.seen[-1]
    for name, value in TRACE_HEADERS.items():
        assert seen.get(name) == value, (name, seen)
    assert "x-private" not in seen and "cookie" not in seen and "x-model-serving-caller" not in seen


def test_request_id_is_made_when_missing_and_sent_on(stack: Stack) -> None:
    stack.fake.seen.clear()
    r = httpx.post(stack.fake_grpc.v1, json={"instances": [RECORD]}, timeout=30)
    rid = r.json()["id"]
    assert rid and r.headers["x-request-id"] == rid
    assert stack.fake.seen[-1]["x-request-id"] == rid


def _samples(server: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("transformer_")
    }


def test_metrics_count_requests_by_protocol_and_code(stack: Stack, spec: FeatureSpec) -> None:
    server = stack.v1
    before = _samples(server)
    assert httpx.post(server.v1, json={"instances": [RECORD]}, timeout=30).status_code == 200
    assert httpx.post(server.v1, json={"instances": [{"age": 1}]}, timeout=30).status_code == 400
    assert httpx.post(server.v1, content=b"{", timeout=30).status_code == 400  # unreadable: counted too
    assert httpx.post(server.v2, json=v2_json(columns([RECORD], spec)), timeout=30).status_code == 200
    asyncio.run(grpc_infer(server.grpc, InferRequest(MODEL, columns([RECORD], spec))))
    after = _samples(server)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"model_name": MODEL, **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("transformer_requests_total", protocol="rest_v1", code="200") == 1
    assert delta("transformer_requests_total", protocol="rest_v1", code="400") == 2
    assert delta("transformer_requests_total", protocol="rest_v2", code="200") == 1
    assert delta("transformer_requests_total", protocol="grpc_v2", code="OK") == 1
    assert delta("transformer_request_duration_seconds_count", protocol="rest_v1") == 3
    assert delta("transformer_request_duration_seconds_count", protocol="grpc_v2") == 1


def test_payload_logger_sends_request_and_response_events(stack: Stack) -> None:
    r = httpx.post(stack.grpc.v1, json={"instances": [RECORD]}, headers={"ce-id": "event-7"}, timeout=30)
    assert r.status_code == 200
    events = stack.sink.wait_for(
        lambda e: e.headers.get("ce-id") == "event-7" and "response" in e.headers["ce-type"]
    )
    assert events, [e.headers for e in stack.sink.events]
    mine = [e for e in stack.sink.events if e.headers.get("ce-id") == "event-7"]
    types = sorted(e.headers["ce-type"] for e in mine)
    assert types == ["org.kubeflow.serving.inference.request", "org.kubeflow.serving.inference.response"]
    request = next(e for e in mine if e.headers["ce-type"].endswith("request"))
    response = next(e for e in mine if e.headers["ce-type"].endswith("response"))
    assert request.headers["ce-component"] == "transformer"
    assert request.headers["ce-inferenceservicename"] == MODEL
    assert json.loads(request.body) == {"instances": [RECORD]}
    assert json.loads(response.body)["predictions"] == r.json()["predictions"]
