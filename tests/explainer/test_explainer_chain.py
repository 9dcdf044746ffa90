"""Explainer -> predictor across real processes: additivity, exactness, determinism, batching,
speed, validation and predictor failures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from explainer_stack import BIG_BATCH, FAKE_TIMEOUT, MODEL, Stack
from fake_predictor import FAIL_MESSAGE, REJECT_MESSAGE, UNAVAILABLE_MESSAGE, FakePredictor
from prometheus_client.parser import text_string_to_metric_families
from serving_common import Bundle, FeatureSpec

BACKGROUND = 10  # EXPLAINER_BACKGROUND_SIZE's default


@pytest.fixture(scope="module")
def spec(gbm_bundle: Path) -> FeatureSpec:
    return Bundle.open(gbm_bundle).spec()


@pytest.fixture(scope="module")
def held_out() -> list[dict[str, Any]]:
    from training import data

    return data.load(7).test_records[:8]


def explain(url: str, records: list[dict[str, Any]], **headers: str) -> dict[str, Any]:
    r = httpx.post(url, json={"instances": records}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def predictor_probability(stack: Stack, spec: FeatureSpec, records: list[dict[str, Any]]) -> np.ndarray:
    x = spec.vectorise(records)
    body = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]
    }
    r = httpx.post(f"{stack.predictor.url}/v2/models/{MODEL}/infer", json=body, timeout=30)
    out = next(o for o in r.json()["outputs"] if o["name"] == "probabilities")
    return np.array(out["data"], dtype=np.float32).reshape(-1, 2)[:, 1]


@pytest.mark.parametrize("hop", ["grpc", "rest"])
def test_attributions_add_up_to_the_model_output(
    stack: Stack, spec: FeatureSpec, held_out: list[dict[str, Any]], hop: str
) -> None:
    body = explain(getattr(stack, hop).v1, held_out, **{"x-request-id": f"additivity-{hop}"})
    assert (
        body["model_name"] == MODEL and body["model_version"] == "gbm-1" and body["id"] == f"additivity-{hop}"
    )
    assert body["method"] == "kernel_shap" and body["explained_class"] == "high_risk"
    proba = predictor_probability(stack, spec, held_out)
    assert len(body["explanations"]) == len(held_out)
    for i, (e, record) in enumerate(zip(body["explanations"], held_out, strict=True)):
        assert list(e["attributions"]) == spec.names  # raw feature names, spec order
        total = e["base_value"] + sum(e["attributions"].values())
        assert abs(total - e["output"]) < 1e-3, (i, total, e["output"])
        assert abs(e["output"] - float(proba[i])) < 1e-6, (i, e["output"], proba[i])
        assert e["label"] == ("high_risk" if proba[i] > 0.5 else "low_risk")
        assert e["features"]["sex"] == record["sex"] and abs(e["features"]["age"] - record["age"]) < 1e-4


def test_exact_shapley_values_against_the_bundle_itself(
    stack: Stack, gbm_bundle: Path, spec: FeatureSpec, held_out: list[dict[str, Any]]
) -> None:
    """Every coalition is evaluated, so the served attributions are the exact Shapley values of the
    ONNX model against the k-means background: the shap library, in process, agrees."""
    import shap

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(gbm_bundle / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )

    def f(rows: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {"input": rows.astype(np.float32)})[0][:, 1].astype(np.float64)

    background = shap.kmeans(Bundle.open(gbm_bundle).reference().astype(np.float64), BACKGROUND)
    reference = shap.KernelExplainer(f, background)
    records = held_out[:3]
    want = reference.shap_values(spec.vectorise(records).astype(np.float64), l1_reg=False, silent=True)
    got = explain(stack.grpc.v1, records)["explanations"]
    for i, e in enumerate(got):
        np.testing.assert_allclose(list(e["attributions"].values()), want[i], rtol=0, atol=1e-6)
        assert abs(e["base_value"] - float(reference.expected_value)) < 1e-6


@pytest.mark.parametrize("hop", ["grpc", "rest"])
def test_explanations_are_the_same_on_every_run(
    stack: Stack, held_out: list[dict[str, Any]], hop: str
) -> None:
    url = getattr(stack, hop).v1
    first = explain(url, held_out[:2])["explanations"]
    explain(url, held_out[2:4])  # something else in between
    assert explain(url, held_out[:2])["explanations"] == first


def _predictor_samples(stack: Stack) -> dict[str, float]:
    text = httpx.get(f"{stack.predictor.url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            wanted = s.name in ("predictor_requests_total", "predictor_rows_per_request_sum")
            labels = s.labels
            if (
                wanted
                and labels.get("model_name") == MODEL
                and labels.get("protocol", "grpc_v2") == "grpc_v2"
                and labels.get("code", "OK") == "OK"
            ):
                out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def test_perturbations_go_to_the_predictor_in_one_batch(stack: Stack, held_out: list[dict[str, Any]]) -> None:
    explain(stack.grpc.v1, held_out[:1])  # the background is evaluated once, on first use
    before = _predictor_samples(stack)
    explain(stack.grpc.v1, held_out[1:2])
    after = _predictor_samples(stack)
    requests = after["predictor_requests_total"] - before["predictor_requests_total"]
    rows = after["predictor_rows_per_request_sum"] - before["predictor_rows_per_request_sum"]
    # the label of the record, the record alone, then all 2**10 - 2 coalitions x 10 background rows at once
    assert requests == 3, requests
    assert rows == 1 + 1 + (2**10 - 2) * BACKGROUND <= BIG_BATCH


def test_one_record_is_explained_well_under_a_second(stack: Stack, held_out: list[dict[str, Any]]) -> None:
    explain(stack.grpc.v1, held_out[:1])
    timings = []
    for record in held_out[1:4]:
        start = time.perf_counter()
        explain(stack.grpc.v1, [record])
        timings.append(time.perf_counter() - start)
    assert min(timings) < 1.0, timings


def test_v2_explain_route_gives_the_v1_answer(
    stack: Stack, spec: FeatureSpec, held_out: list[dict[str, Any]]
) -> None:
    records = held_out[:2]
    v1 = explain(stack.grpc.v1, records)["explanations"]
    columns = [
        {"name": f.name, "datatype": "BYTES" if f.type == "categorical" else "FP64", "shape": [2],
         "data": [r[f.name] for r in records]}
        for f in spec.features
    ]  # fmt: skip
    as_json = [
        {"name": "records", "datatype": "BYTES", "shape": [2], "data": [json.dumps(r) for r in records]}
    ]
    for inputs in (columns, as_json):
        r = httpx.post(stack.grpc.v2, json={"id": "v2-explain", "inputs": inputs}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["id"] == "v2-explain" and body["parameters"]["explained_class"] == "high_risk"
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["attributions"]["shape"] == [2, spec.n_features]
        assert outputs["attributions"]["parameters"]["features"] == ",".join(spec.names)
        values = np.array(outputs["attributions"]["data"]).reshape(2, -1)
        for i, e in enumerate(v1):
            np.testing.assert_allclose(values[i], list(e["attributions"].values()), rtol=0, atol=1e-12)
            assert outputs["base_value"]["data"][i] == e["base_value"]
            assert outputs["output"]["data"][i] == e["output"]
            assert outputs["label"]["data"][i] == e["label"]


def test_every_problem_of_every_record_in_one_400(stack: Stack, held_out: list[dict[str, Any]]) -> None:
    good = held_out[0]
    bad = [good, {**good, "bmi": 300.0, "sex": "x"}, {k: v for k, v in good.items() if k != "bp"}]
    r = httpx.post(stack.grpc.v1, json={"instances": bad}, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith("3 problem(s) in 2 of 3 record(s)")
    for expected in (
        "record 1, field 'bmi': value 300.0 is out of range",
        "record 1, field 'sex': unknown category 'x'",
        "record 2, field 'bp': is missing",
    ):
        assert expected in error


@pytest.mark.parametrize(
    ("url", "content", "message"),
    [
        ("v1", b"{oops", "not JSON"),
        ("v1", json.dumps({"instances": [{"age": 50}] * 17}).encode(), "at most 16"),
        ("v2", b'{"inputs": 3}', "expected a V2 inference request"),
    ],
)
def test_bad_bodies_are_400(stack: Stack, url: str, content: bytes, message: str) -> None:
    r = httpx.post(getattr(stack.grpc, url), content=content, timeout=30)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


@pytest.fixture
def fake(stack: Stack) -> Iterator[FakePredictor]:
    stack.fake_predictor.mode = "ok"
    stack.fake_predictor.seen.clear()
    yield stack.fake_predictor
    stack.fake_predictor.mode = "ok"


TRACE_HEADERS = {
    "x-request-id": "explain-42",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "congo=t61rcWkgMzE",
    "authorization": "Bearer token-1",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-sampled": "1",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
}


@pytest.mark.parametrize("hop", ["fake", "fake_rest"])
def test_trace_and_auth_headers_reach_the_predictor_marked_as_explainer_calls(
    stack: Stack, fake: FakePredictor, held_out: list[dict[str, Any]], hop: str
) -> None:
    sent = {**TRACE_HEADERS, "x-private": "stays here", "x-model-serving-caller": "client"}
    body = explain(getattr(stack, hop).v1, held_out[:1], **sent)
    assert body["id"] == "explain-42"
    e = body["explanations"][0]  # the fake's answer never changes: nothing to attribute
    assert e["output"] == e["base_value"] == 0.75 and set(e["attributions"].values()) == {0.0}
    assert len(fake.seen) >= 2
    for seen in fake.seen:  # every request of the explanation, not just the first
        for name, value in TRACE_HEADERS.items():
            assert seen.get(name) == value, (name, seen)
        assert "x-private" not in seen
        assert seen["x-model-serving-caller"] == "explainer"  # contract C1, whatever the caller sent


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        ("reject", 400, f"the predictor rejected the request: {REJECT_MESSAGE}"),
        ("unavailable", 503, UNAVAILABLE_MESSAGE),
        ("fail", 502, FAIL_MESSAGE),
        ("slow", 504, f"did not answer within {FAKE_TIMEOUT:g} s"),
    ],
)
def test_predictor_failures_keep_their_meaning(
    stack: Stack, fake: FakePredictor, held_out: list[dict[str, Any]], mode: str, status: int, message: str
) -> None:
    fake.mode, fake.delay = mode, 5.0
    start = time.monotonic()
    r = httpx.post(stack.fake.v1, json={"instances": held_out[:1]}, timeout=30)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert time.monotonic() - start < FAKE_TIMEOUT + 1.5


def test_metrics_count_explanations(stack: Stack, held_out: list[dict[str, Any]]) -> None:
    explain(stack.rest.v1, held_out[:1])
    httpx.post(stack.rest.v1, json={"instances": [{"age": 1}]}, timeout=30)
    text = httpx.get(f"{stack.rest.url}/metrics", timeout=10).text
    samples = {
        (s.name, s.labels.get("protocol"), s.labels.get("code")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("explainer_") and s.labels.get("model_name") == MODEL
    }
    assert samples[("explainer_requests_total", "rest_v1", "200")] >= 1
    assert samples[("explainer_requests_total", "rest_v1", "400")] >= 1
    assert samples[("explainer_request_duration_seconds_count", "rest_v1", None)] >= 2


def test_metadata_lists_the_raw_inputs_and_the_explanation_outputs(stack: Stack, gbm_bundle: Path) -> None:
    """V2 model metadata, REST and gRPC equal: one input per feature of the spec, the V2 explain
    answer's outputs, platform and the bundle's version."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    raw = json.loads((gbm_bundle / "feature_spec.json").read_text())
    card = json.loads((gbm_bundle / "model_card.json").read_text())
    inputs = [
        {"name": f["name"], "datatype": "BYTES" if f["type"] == "categorical" else "FP64", "shape": [-1]}
        for f in raw["features"]
    ]
    outputs = [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "output", "datatype": "FP64", "shape": [-1]},
        {"name": "base_value", "datatype": "FP64", "shape": [-1]},
        {"name": "attributions", "datatype": "FP64", "shape": [-1, len(raw["features"])]},
    ]
    r = httpx.get(f"{stack.grpc.url}/v2/models/{MODEL}", timeout=20)
    assert r.status_code == 200, r.text
    rest = r.json()
    assert rest == {
        "name": MODEL,
        "versions": [card["version"]],
        "platform": "kserve-explainer",
        "inputs": inputs,
        "outputs": outputs,
    }
    with grpc.insecure_channel(stack.grpc.grpc) as channel:
        answer = GRPCInferenceServiceStub(channel).ModelMetadata(
            pb.ModelMetadataRequest(name=MODEL), timeout=20
        )
    tensors = [
        [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in group]
        for group in (answer.inputs, answer.outputs)
    ]
    assert (answer.name, list(answer.versions), answer.platform, *tensors) == (
        MODEL,
        [card["version"]],
        "kserve-explainer",
        inputs,
        outputs,
    )
