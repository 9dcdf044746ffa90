"""Issue 16: the transformer's V2 model metadata describes the raw records it accepts (one tensor
per feature of the bundle's feature spec) and the outputs it returns, the same over REST and gRPC,
and a request built from nothing but that metadata is answered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from model_stack import MODEL, Server, component, started_together

RECORD = {
    "age": 59.0, "sex": "female", "bmi": 32.1, "bp": 101.0, "tc": 157.0,
    "ldl": 93.2, "hdl": 38.0, "tch": 4.0, "ltg": 4.8598, "glu": 87.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def chain(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    logs = tmp_path_factory.mktemp("transformer-metadata")
    predictor = component("predictor", ["--model_dir", str(gbm_bundle)], logs / "predictor.log")
    transformer = component(
        "transformer",
        [
            "--model_dir", str(gbm_bundle),
            "--predictor_host", f"127.0.0.1:{predictor.grpc_port}",
            "--predictor_protocol", "grpc-v2",
        ],
        logs / "transformer.log",
    )  # fmt: skip
    with started_together([predictor, transformer]):
        yield predictor, transformer


def _grpc_metadata(server: Server) -> pb.ModelMetadataResponse:
    with grpc.insecure_channel(server.grpc) as channel:
        answer: pb.ModelMetadataResponse = GRPCInferenceServiceStub(channel).ModelMetadata(
            pb.ModelMetadataRequest(name=MODEL), timeout=20
        )
    return answer


def _tensors(answer: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in answer]


def test_metadata_lists_the_raw_inputs_of_the_feature_spec(
    chain: tuple[Server, Server], gbm_bundle: Path
) -> None:
    _, transformer = chain
    spec = json.loads((gbm_bundle / "feature_spec.json").read_text())
    card = json.loads((gbm_bundle / "model_card.json").read_text())
    expected_inputs = [
        {"name": f["name"], "datatype": "BYTES" if f["type"] == "categorical" else "FP64", "shape": [-1]}
        for f in spec["features"]
    ]
    assert [i["name"] for i in expected_inputs] == list(RECORD)  # the spec this test was written for
    assert [i["datatype"] for i in expected_inputs].count("BYTES") == 1
    expected_outputs = [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probability", "datatype": "FP32", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(spec["classes"])]},
    ]

    r = httpx.get(f"{transformer.url}/v2/models/{MODEL}", timeout=20)
    assert r.status_code == 200, r.text
    rest = r.json()
    assert rest["name"] == MODEL
    assert rest["platform"] == "kserve-transformer"
    assert rest["versions"] == [card["version"]]
    assert rest["inputs"] == expected_inputs
    assert rest["outputs"] == expected_outputs

    answer = _grpc_metadata(transformer)
    assert answer.name == MODEL
    assert answer.platform == rest["platform"]
    assert list(answer.versions) == rest["versions"]
    assert _tensors(answer.inputs) == expected_inputs
    assert _tensors(answer.outputs) == expected_outputs


def test_unknown_model_metadata_is_not_found_over_both_protocols(chain: tuple[Server, Server]) -> None:
    _, transformer = chain
    r = httpx.get(f"{transformer.url}/v2/models/no-such-model", timeout=20)
    assert r.status_code == 404, r.text
    assert "no-such-model" in r.text
    with grpc.insecure_channel(transformer.grpc) as channel, pytest.raises(grpc.RpcError) as err:
        GRPCInferenceServiceStub(channel).ModelMetadata(pb.ModelMetadataRequest(name="no-such-model"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in (err.value.details() or "")


def _value(datatype: str, raw: Any) -> Any:
    """A record's value as the metadata's datatype says it travels."""
    return str(raw) if datatype == "BYTES" else float(raw)


def test_a_request_built_only_from_the_metadata_is_answered(
    chain: tuple[Server, Server], gbm_bundle: Path
) -> None:
    _, transformer = chain
    classes = json.loads((gbm_bundle / "feature_spec.json").read_text())["classes"]
    metadata = httpx.get(f"{transformer.url}/v2/models/{MODEL}", timeout=20).json()
    rows = [RECORD, {**RECORD, "age": 33.0, "sex": "male"}]
    body = {
        "id": "from-metadata",
        "inputs": [
            {
                "name": i["name"],
                "datatype": i["datatype"],
                "shape": [len(rows) if d == -1 else d for d in i["shape"]],
                "data": [_value(i["datatype"], row[i["name"]]) for row in rows],
            }
            for i in metadata["inputs"]
        ],
    }
    r = httpx.post(transformer.v2, json=body, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["id"] == "from-metadata"
    assert [o["name"] for o in answer["outputs"]] == [o["name"] for o in metadata["outputs"]]
    for out, described in zip(answer["outputs"], metadata["outputs"], strict=True):
        assert out["datatype"] == described["datatype"]
        assert [len(rows) if d == -1 else d for d in described["shape"]] == out["shape"]
    labels = answer["outputs"][0]["data"]
    assert len(labels) == len(rows) and set(labels) <= set(classes), labels

    # the same request over gRPC, built from the gRPC metadata
    with grpc.insecure_channel(transformer.grpc) as channel:
        stub = GRPCInferenceServiceStub(channel)
        described = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), timeout=20)
        tensors = []
        for i in described.inputs:
            values = [_value(i.datatype, row[i.name]) for row in rows]
            contents = (
                pb.InferTensorContents(bytes_contents=[v.encode() for v in values])
                if i.datatype == "BYTES"
                else pb.InferTensorContents(fp64_contents=values)
            )
            shape = [len(rows) if d == -1 else d for d in i.shape]
            tensors.append(
                pb.ModelInferRequest.InferInputTensor(
                    name=i.name, datatype=i.datatype, shape=shape, contents=contents
                )
            )
        response = stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=tensors), timeout=30)
    assert [o.name for o in response.outputs] == [o.name for o in described.outputs]
    assert [o.datatype for o in response.outputs] == [o.datatype for o in described.outputs]
    assert list(response.outputs[0].shape) == [len(rows)]
