"""Every client mistake gets a 4xx (gRPC INVALID_ARGUMENT / NOT_FOUND) naming the input and what was
expected; never a 500, and the server stays up."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from predictor_stack import MODEL, Predictor, triton_grpc

ROW = [59.0, 1.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]


def tensor(**overrides: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"name": "input", "datatype": "FP32", "shape": [1, 10], "data": ROW}
    t.update(overrides)
    return {k: v for k, v in t.items() if v is not None}


V2_CASES: list[tuple[str, Any, int, str]] = [
    ("not json", b"{not json", 400, "request body is not valid JSON"),
    ("body is a list", [1, 2], 400, "the request body must be a JSON object"),
    ("no inputs", {"id": "1"}, 400, "'inputs' must be a non-empty list"),
    ("empty inputs", {"inputs": []}, 400, "'inputs' must be a non-empty list"),
    ("input without name", {"inputs": [tensor(name=None)]}, 400, "inputs[0].name must be a non-empty string"),
    (
        "unknown input",
        {"inputs": [tensor(name="features")]},
        400,
        "unknown input 'features'; the model's inputs are ['input']",
    ),
    ("input twice", {"inputs": [tensor(), tensor()]}, 400, "input 'input' is given more than once"),
    (
        "wrong datatype",
        {"inputs": [tensor(datatype="FP64")]},
        400,
        "input 'input': datatype 'FP64' does not match the model's FP32",
    ),
    (
        "missing datatype",
        {"inputs": [tensor(datatype=None)]},
        400,
        "input 'input': 'datatype' must be a string",
    ),
    (
        "wrong feature count",
        {"inputs": [tensor(shape=[1, 9], data=ROW[:9])]},
        400,
        "input 'input': shape [1, 9] does not match the model's [-1, 10]: dimension 1 must be 10 "
        "(the number of features), got 9",
    ),
    (
        "wrong rank",
        {"inputs": [tensor(shape=[10])]},
        400,
        "input 'input': shape [10] has 1 dimensions; the model expects 2: [-1, 10]",
    ),
    (
        "negative dimension",
        {"inputs": [tensor(shape=[-1, 10])]},
        400,
        "input 'input': dimension 0 of shape [-1, 10] is negative",
    ),
    (
        "shape not ints",
        {"inputs": [tensor(shape=["1", 10])]},
        400,
        "input 'input': 'shape' must be a list of integers",
    ),
    (
        "too few values",
        {"inputs": [tensor(shape=[2, 10], data=ROW + ROW[:9])]},
        400,
        "input 'input': shape [2, 10] needs 20 values but 19 values were sent",
    ),
    (
        "too many values",
        {"inputs": [tensor(data=[*ROW, 1.0])]},
        400,
        "input 'input': shape [1, 10] needs 10 values but 11 values were sent",
    ),
    (
        "strings",
        {"inputs": [tensor(data=["59", *ROW[1:]])]},
        400,
        "input 'input': 'data' must hold FP32 numbers, got string values",
    ),
    (
        "null value",
        {"inputs": [tensor(data=[None, *ROW[1:]])]},
        400,
        "input 'input': 'data' must hold FP32 numbers, got mixed or null values",
    ),
    (
        "ragged rows",
        {"inputs": [tensor(shape=[2, 10], data=[ROW, ROW[:9]])]},
        400,
        "input 'input': 'data' is not a rectangular array of numbers",
    ),
    ("data not a list", {"inputs": [tensor(data=5)]}, 400, "input 'input': 'data' must be a list, got int"),
    ("no data", {"inputs": [tensor(data=None)]}, 400, "input 'input': 'data' is missing"),
    (
        "overflow to infinity",
        {"inputs": [tensor(data=[1e39, *ROW[1:]])]},
        400,
        "input 'input': value at index [0, 0] is inf; every value must be finite",
    ),
    (
        "too many rows",
        {"inputs": [tensor(shape=[300, 10], data=ROW * 300)]},
        400,
        "input 'input': 300 rows exceed the maximum of 256 per request",
    ),
    (
        "unknown output",
        {"inputs": [tensor()], "outputs": [{"name": "score"}]},
        400,
        "unknown output 'score'; the model's outputs are ['label', 'probabilities']",
    ),
    ("id not a string", {"id": 5, "inputs": [tensor()]}, 400, "'id' must be a string"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), [c[1:] for c in V2_CASES], ids=[c[0] for c in V2_CASES]
)
def test_v2_rest_bad_input(predictor: Predictor, body: Any, status: int, message: str) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    r = httpx.post(predictor.infer_url, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def _post_binary(
    url: str, header: dict[str, Any], payload: bytes, declared: int | None = None
) -> httpx.Response:
    head = orjson.dumps(header)
    return httpx.post(
        url,
        content=head + payload,
        headers={
            "inference-header-content-length": str(len(head) if declared is None else declared),
            "content-type": "application/octet-stream",
        },
    )


def _binary_input(shape: list[int], size: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": size}}
        ]
    }


_ROW = np.asarray(ROW, dtype=np.float32)
_NAN = _ROW.copy()
_NAN[3] = np.nan

BINARY_CASES: list[tuple[str, dict[str, Any], bytes, str]] = [
    (
        "non-finite value",
        _binary_input([1, 10], 40),
        _NAN.tobytes(),
        "input 'input': value at index [0, 3] is nan; every value must be finite",
    ),
    (
        "size past the end",
        _binary_input([1, 10], 80),
        _ROW.tobytes(),
        "binary_data_size 80 runs past the end of the body (40 binary bytes left)",
    ),
    (
        "size not whole values",
        _binary_input([1, 10], 38),
        _ROW.tobytes()[:38],
        "binary_data_size 38 is not a whole number of FP32 values",
    ),
    (
        "bytes left over",
        _binary_input([1, 10], 36),
        _ROW.tobytes(),
        "4 bytes of binary data that no input's binary_data_size accounts for",
    ),
    (
        "shape disagrees with size",
        _binary_input([2, 10], 40),
        _ROW.tobytes(),
        "input 'input': shape [2, 10] needs 20 values but 10 values were sent",
    ),
]


def test_binary_extension_accepts_a_good_request(predictor: Predictor) -> None:
    r = _post_binary(predictor.infer_url, _binary_input([1, 10], 40), _ROW.tobytes())
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("header", "payload", "message"), [c[1:] for c in BINARY_CASES], ids=[c[0] for c in BINARY_CASES]
)
def test_binary_extension_bad_input(
    predictor: Predictor, header: dict[str, Any], payload: bytes, message: str
) -> None:
    r = _post_binary(predictor.infer_url, header, payload)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_binary_header_length_is_checked(predictor: Predictor) -> None:
    r = _post_binary(predictor.infer_url, {"inputs": []}, b"", declared=10_000)
    assert r.status_code == 400
    assert "header inference-header-content-length is 10000 but the body has" in r.json()["error"]
    r = httpx.post(
        predictor.infer_url, content=struct.pack("<f", 1.0), headers={"inference-header-content-length": "x"}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "header inference-header-content-length must be an integer, got 'x'"


V1_CASES: list[tuple[str, Any, str]] = [
    ("no instances", {"rows": [ROW]}, "the V1 request body must have 'instances'"),
    ("instances not a list", {"instances": 3}, "'instances' must be a non-empty list of rows"),
    ("instances empty", {"instances": []}, "'instances' must be a non-empty list of rows"),
    (
        "wrong feature count",
        {"instances": [ROW[:9]]},
        "'instances': shape [1, 10] needs 10 values but 9 values were sent",
    ),
    ("strings", {"instances": [["a"] * 10]}, "'instances': 'data' must hold FP32 numbers, got string values"),
    (
        "too many rows",
        {"instances": [ROW] * 257},
        "'instances': 257 rows exceed the maximum of 256 per request",
    ),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in V1_CASES], ids=[c[0] for c in V1_CASES])
def test_v1_bad_input(predictor: Predictor, body: Any, message: str) -> None:
    r = httpx.post(f"{predictor.http}/v1/models/{MODEL}:predict", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_unknown_model_is_404_over_rest_and_grpc(predictor: Predictor, tmp_path: Path) -> None:
    for path in ("/v2/models/other/infer", "/v1/models/other:predict"):
        r = httpx.post(predictor.http + path, json={"inputs": [tensor()]})
        assert r.status_code == 404
        assert r.json()["error"] == "Model with name other does not exist."
    result = triton_grpc(predictor, tmp_path, np.zeros((1, 10), np.float32), model="other")
    assert result["error"]["status"] == "StatusCode.NOT_FOUND"
    assert "other" in result["error"]["message"]


GRPC_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "wrong datatype",
        {"x": np.zeros((1, 10), np.float64), "datatype": "FP64"},
        "input 'input': datatype 'FP64' does not match the model's FP32",
    ),
    (
        "wrong feature count",
        {"x": np.zeros((1, 9), np.float32)},
        "input 'input': shape [1, 9] does not match the model's [-1, 10]: dimension 1 must be 10",
    ),
    (
        "unknown input",
        {"x": np.zeros((1, 10), np.float32), "name": "features"},
        "unknown input 'features'; the model's inputs are ['input']",
    ),
    (
        "non-finite",
        {"x": np.full((2, 10), np.inf, np.float32)},
        "input 'input': value at index [0, 0] is inf; every value must be finite",
    ),
    (
        "too many rows",
        {"x": np.zeros((300, 10), np.float32)},
        "input 'input': 300 rows exceed the maximum of 256 per request",
    ),
]


@pytest.mark.parametrize("case", [c[1:] for c in GRPC_CASES], ids=[c[0] for c in GRPC_CASES])
def test_grpc_bad_input_is_invalid_argument(
    predictor: Predictor, tmp_path: Path, case: tuple[dict[str, Any], str]
) -> None:
    kwargs, message = case
    result = triton_grpc(predictor, tmp_path, **kwargs)
    assert result["error"]["status"] == "StatusCode.INVALID_ARGUMENT", result
    assert message in result["error"]["message"]


def test_server_stays_up_after_bad_input(predictor: Predictor) -> None:
    for body, _, _ in [c[1:] for c in V2_CASES]:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        assert httpx.post(predictor.infer_url, content=content).status_code < 500
    r = httpx.post(predictor.infer_url, json={"inputs": [tensor()]})
    assert r.status_code == 200
    assert httpx.get(f"{predictor.http}/v2/health/ready").json() == {"ready": True}


def test_raw_grpc_contents_that_disagree_with_the_shape(predictor: Predictor) -> None:
    """What tritonclient refuses to send, a hand-made gRPC request can: the server must still say 400."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    def call(request: pb.ModelInferRequest) -> grpc.RpcError:
        with grpc.insecure_channel(predictor.grpc) as channel, pytest.raises(grpc.RpcError) as info:
            GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
        return info.value

    raw = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[3, 10])],
        raw_input_contents=[np.zeros((2, 10), np.float32).tobytes()],
    )
    err = call(raw)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        err.details() == "input 'input': shape [3, 10] needs 30 values but 20 values in binary data were sent"
    )

    contents = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="input",
                datatype="FP32",
                shape=[1, 10],
                contents=pb.InferTensorContents(fp32_contents=ROW[:7]),
            )
        ],
    )
    err = call(contents)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "input 'input': shape [1, 10] needs 10 values but 7 values were sent"
