"""Clients nobody here wrote get onnxruntime's own numbers: tritonclient (HTTP binary and JSON,
gRPC), KServe's InferenceRESTClient and InferenceGRPCClient, and plain HTTP for V1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from predictor_stack import MODEL, Predictor, assert_same_probabilities, ort_outputs, triton_grpc

BATCHES = [1, 7, 111]


def _batches(x: np.ndarray) -> list[np.ndarray]:
    out, i = [], 0
    for size in BATCHES * 10:
        if i >= len(x):
            break
        out.append(x[i : i + size])
        i += size
    return out


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_http_matches_onnxruntime(
    predictor: Predictor, gbm_bundle: Path, held_out: np.ndarray, binary: bool
) -> None:
    client = httpclient.InferenceServerClient(predictor.http.removeprefix("http://"))
    try:
        labels, probas = [], []
        for x in _batches(held_out):
            inp = httpclient.InferInput("input", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            outs = [
                httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")
            ]
            result = client.infer(MODEL, [inp], outputs=outs)
            assert result.get_response()["id"], "every response carries an id"
            labels.append(result.as_numpy("label"))
            probas.append(result.as_numpy("probabilities"))
    finally:
        client.close()
    want_label, want_proba = ort_outputs(gbm_bundle, held_out)
    np.testing.assert_array_equal(np.concatenate(labels), want_label)
    assert_same_probabilities(np.concatenate(probas), want_proba)


def test_tritonclient_http_default_outputs_are_binary(predictor: Predictor, held_out: np.ndarray) -> None:
    client = httpclient.InferenceServerClient(predictor.http.removeprefix("http://"))
    try:
        inp = httpclient.InferInput("input", [3, 10], "FP32")
        inp.set_data_from_numpy(held_out[:3])
        result = client.infer(MODEL, [inp], request_id="abc-1")
    finally:
        client.close()
    response = result.get_response()
    assert response["id"] == "abc-1"
    assert response["model_version"] == "gbm-1"
    assert {o["name"] for o in response["outputs"]} == {"label", "probabilities"}
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    assert result.as_numpy("probabilities").shape == (3, 2)


def test_tritonclient_grpc_matches_onnxruntime(
    predictor: Predictor, gbm_bundle: Path, held_out: np.ndarray, tmp_path: Path
) -> None:
    labels, probas = [], []
    for i, x in enumerate(_batches(held_out)):
        result = triton_grpc(predictor, tmp_path / f"b{i}", x, metadata=(i == 0))
        if i == 0:
            assert result["live"] and result["ready"] and result["model_ready"]
            assert result["metadata"]["inputs"] == [
                {"name": "input", "datatype": "FP32", "shape": ["-1", "10"]}
            ]
        assert result["id"], "every response carries an id, also when tritonclient sends none"
        assert result["model_version"] == "gbm-1"
        labels.append(np.asarray(result["outputs"]["label"]))
        probas.append(np.asarray(result["outputs"]["probabilities"], dtype=np.float32))
    want_label, want_proba = ort_outputs(gbm_bundle, held_out)
    np.testing.assert_array_equal(np.concatenate(labels), want_label)
    assert_same_probabilities(np.concatenate(probas), want_proba)
    only = triton_grpc(
        predictor, tmp_path / "only", held_out[:4], outputs=["probabilities"], request_id="r-7"
    )
    assert only["id"] == "r-7"
    assert list(only["outputs"]) == ["probabilities"]


def _kserve_request(x: np.ndarray, request_id: str | None = None) -> InferRequest:
    inp = InferInput(name="input", shape=list(x.shape), datatype="FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    return InferRequest(model_name=MODEL, infer_inputs=[inp], request_id=request_id)


def test_kserve_rest_and_grpc_clients(
    predictor: Predictor, mlp_predictor: Predictor, gbm_bundle: Path, mlp_bundle: Path, held_out: np.ndarray
) -> None:
    async def run() -> None:
        for server, bundle in ((predictor, gbm_bundle), (mlp_predictor, mlp_bundle)):
            want_label, want_proba = ort_outputs(bundle, held_out)
            rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
            try:
                res = await rest.infer(server.http, _kserve_request(held_out, "k-1"), model_name=MODEL)
            finally:
                await rest.close()
            assert res.id == "k-1"
            np.testing.assert_array_equal(res.get_output_by_name("label").as_numpy(), want_label)
            assert_same_probabilities(res.get_output_by_name("probabilities").as_numpy(), want_proba)
            grpc = InferenceGRPCClient(server.grpc, retries=2, timeout=30)
            try:
                res = await grpc.infer(_kserve_request(held_out))
            finally:
                await grpc.close()
            assert res.id
            np.testing.assert_array_equal(res.get_output_by_name("label").as_numpy(), want_label)
            assert_same_probabilities(res.get_output_by_name("probabilities").as_numpy(), want_proba)

    asyncio.run(run())


def test_v1_predict_over_plain_http(predictor: Predictor, gbm_bundle: Path, held_out: np.ndarray) -> None:
    r = httpx.post(
        f"{predictor.http}/v1/models/{MODEL}:predict",
        json={"instances": held_out[:5].tolist()},
        headers={"x-request-id": "v1-req"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "v1-req"
    want_label, want_proba = ort_outputs(gbm_bundle, held_out[:5])
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == want_label.tolist()
    assert (r.json()["model_name"], r.json()["model_version"]) == (MODEL, "gbm-1")
    assert_same_probabilities(np.asarray([p["probabilities"] for p in preds], dtype=np.float32), want_proba)


def test_metadata_and_health(predictor: Predictor) -> None:
    with httpx.Client(base_url=predictor.http) as c:
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").json() == {"ready": True}
        assert c.get(f"/v2/models/{MODEL}/ready").status_code == 200
        meta = c.get(f"/v2/models/{MODEL}").json()
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 10]}]
        assert meta["outputs"] == [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ]
        assert c.get("/v2/models/unknown").status_code == 404
        server = c.get("/v2").json()
        assert server["name"] and server["version"]


def test_outputs_selection_and_generated_ids(predictor: Predictor, held_out: np.ndarray) -> None:
    body = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 10], "data": held_out[:2].tolist()}],
        "outputs": [{"name": "label"}],
    }
    ids = set()
    for _ in range(3):
        r = httpx.post(predictor.infer_url, json=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert [o["name"] for o in doc["outputs"]] == ["label"]
        ids.add(doc["id"])
    assert len(ids) == 3 and all(ids)
