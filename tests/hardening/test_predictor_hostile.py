"""Hostile clients against the real predictor: nothing a client sends yields a 5xx (REST) or
INTERNAL / UNKNOWN (gRPC); every refusal names the problem, without internals.

Generated: 2,000 REST requests (paths, verbs, headers, V1/V2 bodies, binary extension, raw bytes)
and 2,000 gRPC ``ModelInfer`` messages (hypothesis, derandomized: the same cases every run), plus
every hand-made case of issue 15's table that concerns the predictor."""

from __future__ import annotations

import json
import struct
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import orjson
import pytest
from hardening_stack import MODEL, ROW, V2_OK, assert_client_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from support import PredictorProcess

CASES = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DATATYPES = ["FP32", "FP64", "FP16", "INT64", "INT32", "INT8", "UINT8", "BOOL", "BYTES", "BF16", "fp32", ""]
PATHS = [
    f"/v2/models/{MODEL}/infer",
    f"/v2/models/{MODEL}/versions/1/infer",
    f"/v1/models/{MODEL}:predict",
    f"/v2/models/{MODEL}",
    f"/v2/models/{MODEL}/ready",
    f"/v1/models/{MODEL}",
    f"/v1/models/{MODEL}:explain",
    f"/v2/models/{MODEL}/explain",
    f"/v2/repository/models/{MODEL}/unload",
    f"/v2/repository/models/{MODEL}/load",
    "/v2/models/other/infer",
    "/v2/health/ready",
    "/v2",
    "/",
    "/docs",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
shapes = (
    st.lists(st.integers(min_value=-3, max_value=2**40), max_size=4) | st.just([1, 10]) | st.just([2, 10])
)
tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["input", "inputs", ""]) | st.text(max_size=5) | json_values,
        "shape": shapes | json_values,
        "datatype": st.sampled_from(DATATYPES) | json_values,
        "data": st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=25)
        | st.lists(st.lists(st.integers(-5, 5), max_size=11), max_size=3)
        | st.lists(st.text(max_size=5), max_size=10)
        | json_values,
        "parameters": st.fixed_dictionaries(
            {}, optional={"binary_data_size": st.integers(-5, 100) | json_values, "content_type": json_values}
        )
        | json_values,
    },
)
v2_document = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=8) | json_values,
        "inputs": st.lists(tensor, max_size=3) | json_values,
        "outputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "x"])}))
        | json_values,
        "parameters": st.dictionaries(st.text(max_size=8), json_values, max_size=3)
        | st.just({"binary_data_output": True}),
    },
)
v1_document = st.fixed_dictionaries(
    {},
    optional={
        "instances": st.lists(st.lists(st.floats(allow_nan=True), min_size=9, max_size=11), max_size=4)
        | json_values,
        "inputs": json_values,
    },
)


def _body(document: Any, nan_literals: bool) -> bytes:
    if nan_literals:
        return json.dumps(document).encode()  # NaN / Infinity literals
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS) if _orjson_ok(document) else b"{}"


def _orjson_ok(document: Any) -> bool:
    try:
        orjson.dumps(document)
    except TypeError:  # integers beyond 64 bits
        return False
    return True


bodies = st.one_of(
    st.builds(_body, v2_document, st.booleans()),
    st.builds(_body, v1_document, st.booleans()),
    st.binary(max_size=200),
    st.builds(lambda n, c: c * n, st.integers(1, 5000), st.sampled_from([b"[", b"{", b'{"a":'])),
    st.builds(lambda d, tail: _body(d, False) + tail, v2_document, st.binary(max_size=64)),
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "inference-header-content-length": st.integers(-5, 300).map(str) | header_values,
        "content-type": st.sampled_from(["application/json", "application/octet-stream", "text/plain"])
        | header_values,
        "traceparent": header_values,
        "x-request-id": header_values,
        "ce-id": header_values,
        "x-model-serving-caller": st.sampled_from(["explainer", "client"]) | header_values,
        "content-encoding": st.sampled_from(["gzip", "br"]),
    },
)


@pytest.fixture(scope="module")
def rest(predictor: PredictorProcess) -> Any:
    with httpx.Client(base_url=predictor.http, timeout=30.0) as client:
        yield client


@CASES
@given(
    method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.sampled_from(PATHS)
    | st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="?#%\x7f"),
        min_size=1,
        max_size=20,
    ).map(lambda p: "/" + p),
    header=headers,
    body=bodies,
)
def test_generated_rest_requests_get_no_server_error(
    rest: httpx.Client, method: str, path: str, header: dict[str, str], body: bytes
) -> None:
    encoded = {k: v.strip(" \t").encode("latin-1") for k, v in header.items()}
    url = rest.base_url.copy_with(raw_path=quote(path, safe="/:@!$&'()*+,;=~").encode())
    r = rest.request(method, url, headers=encoded, content=body)
    assert_client_error(r.status_code, r.content, f"{method} {path} {header} {body[:120]!r}")


def _binary_v2(datatype: str, shape: list[int], raw: bytes) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": shape,
                    "datatype": datatype,
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    return head + raw, {"inference-header-content-length": str(len(head))}


def _hand_made() -> list[tuple[str, str, dict[str, str], bytes, int]]:
    """(what, path, headers, body, expected status) from issue 15's table and its neighbours."""
    infer = f"/v2/models/{MODEL}/infer"
    fp64 = orjson.dumps(
        {
            "inputs": [
                {"name": "input", "shape": [2, 10], "datatype": "FP64", "data": [float("nan")] + [1e20] * 19}
            ]
        }
    )
    bytes_prefix, bytes_headers = _binary_v2("BYTES", [1, 10], struct.pack("<I", 1000) + b"abc")
    short, short_headers = _binary_v2("FP32", [1, 10], b"\0" * 7)
    return [
        ("100,000-deep [", infer, {}, b"[" * 100_000, 400),
        ("100,000-deep [ to V1", f"/v1/models/{MODEL}:predict", {}, b"[" * 100_000, 400),
        ('{"a": + 2,000 [', infer, {}, b'{"a":' + b"[" * 2000, 400),
        (
            'records BYTES ["{}"]',
            infer,
            {},
            b'{"inputs":[{"name":"records","shape":[1],"datatype":"BYTES","data":["{}"]}]}',
            400,
        ),
        ("FP64 [NaN, 1e20]", infer, {}, fp64, 400),
        ("NaN literal", infer, {}, V2_OK.replace(b"0.5", b"NaN"), 400),
        ("BYTES length prefix longer than its data", infer, bytes_headers, bytes_prefix, 400),
        ("binary data shorter than its shape", infer, short_headers, short, 400),
        ("header length beyond the body", infer, {"inference-header-content-length": "99999"}, V2_OK, 400),
        ("non-ASCII traceparent", infer, {"traceparent": "\u00e9t\u00e9"}, V2_OK, 200),
        ("Authorization over 16 KB", infer, {"authorization": "Bearer " + "x" * 17_000}, V2_OK, 200),
        (
            "V1 rows of 9 features",
            f"/v1/models/{MODEL}:predict",
            {},
            orjson.dumps({"instances": [ROW[:9]]}),
            400,
        ),
        (
            "V1 string in a row",
            f"/v1/models/{MODEL}:predict",
            {},
            b'{"instances": [["a",1,1,1,1,1,1,1,1,1]]}',
            400,
        ),
        ("shape with 2^40 rows", infer, {}, V2_OK.replace(b"[1,10]", b"[1099511627776,10]"), 400),
        ("negative shape", infer, {}, V2_OK.replace(b"[1,10]", b"[-1,10]"), 400),
        ("empty body", infer, {}, b"", 400),
        ("JSON array body", infer, {}, b"[]", 400),
        ("unload the model", f"/v2/repository/models/{MODEL}/unload", {}, b"", 404),
        ("load a model", f"/v2/repository/models/{MODEL}/load", {}, b"", 404),
        (":explain on the predictor", f"/v1/models/{MODEL}:explain", {}, b"{}", 404),
        ("V2 explain on the predictor", f"/v2/models/{MODEL}/explain", {}, b"{}", 404),
        ("unknown model", "/v2/models/nope/infer", {}, V2_OK, 404),
    ]


@pytest.mark.parametrize(("what", "path", "header", "body", "status"), _hand_made(), ids=lambda v: None)
def test_hand_made_cases_are_answered_as_expected(
    rest: httpx.Client, what: str, path: str, header: dict[str, str], body: bytes, status: int
) -> None:
    encoded = {k: v.encode("latin-1") for k, v in header.items()}
    r = rest.post(path, headers=encoded, content=body)
    assert r.status_code == status, f"{what}: {r.status_code} {r.text[:300]}"
    assert_client_error(r.status_code, r.content, what)


def test_wrong_verbs_are_405_with_allow(rest: httpx.Client) -> None:
    r = rest.get(f"/v2/models/{MODEL}/infer")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "GET is not allowed" in r.json()["error"]
    r = rest.post(f"/v2/models/{MODEL}/ready")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_the_model_still_serves_after_the_hostile_cases(rest: httpx.Client) -> None:
    r = rest.post(f"/v2/models/{MODEL}/infer", content=V2_OK)
    assert r.status_code == 200 and r.json()["outputs"][0]["name"] == "label"
    assert rest.get(f"/v2/models/{MODEL}/ready").status_code == 200


# --- gRPC --------------------------------------------------------------------------------------

grpc_tensor = st.builds(
    lambda name, datatype, shape, kind, values: pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**{kind: values})
    ),
    st.sampled_from(["input", "records", ""]) | st.text(max_size=5),
    st.sampled_from(DATATYPES) | st.text(max_size=5),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3) | st.just([1, 10]),
    st.sampled_from(["fp32_contents", "fp64_contents"]),
    st.lists(st.floats(width=32, allow_nan=True), max_size=25),
) | st.builds(
    lambda name, datatype, shape, values: pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(bytes_contents=values)
    ),
    st.sampled_from(["input", "records"]),
    st.sampled_from(["BYTES", "FP32"]),
    st.lists(st.integers(-2, 12), max_size=2),
    st.lists(st.binary(max_size=20), max_size=4),
)
grpc_requests = st.builds(
    lambda model, inputs, raw, outputs, rid: pb.ModelInferRequest(
        model_name=model,
        id=rid,
        inputs=inputs,
        raw_input_contents=raw,
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=o) for o in outputs],
    ),
    st.sampled_from([MODEL, MODEL, MODEL, "other", ""]),
    st.lists(grpc_tensor, max_size=3),
    st.lists(st.binary(max_size=60), max_size=3) | st.just([]),
    st.lists(st.sampled_from(["label", "probabilities", "nope"]), max_size=2),
    st.text(max_size=6),
)
CLIENT_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@pytest.fixture(scope="module")
def stub(predictor: PredictorProcess) -> Any:
    with grpc.insecure_channel(predictor.grpc) as channel:
        yield GRPCInferenceServiceStub(channel)


def _call(
    stub: Any, request: pb.ModelInferRequest, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[Any, str]:
    try:
        stub.ModelInfer(request, timeout=30, metadata=metadata)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


@CASES
@given(request=grpc_requests)
def test_generated_grpc_messages_get_no_internal_error(stub: Any, request: pb.ModelInferRequest) -> None:
    code, details = _call(stub, request)
    assert code in CLIENT_CODES, f"{code} {details!r} for {request}"
    if code != grpc.StatusCode.OK:
        assert len(details) > 5 and "0x" not in details


def test_grpc_hand_made_cases(stub: Any) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor
    bad_prefix = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[tensor(name="input", datatype="BYTES", shape=[1, 10])],
        raw_input_contents=[struct.pack("<I", 1000) + b"abc"],
    )
    code, details = _call(stub, bad_prefix)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details
    good = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            tensor(
                name="input",
                datatype="FP32",
                shape=[1, 10],
                contents=pb.InferTensorContents(fp32_contents=ROW),
            )
        ],
    )
    # grpc refuses non-ASCII metadata on the client's side already: junk ASCII here
    code, _ = _call(
        stub, good, metadata=(("traceparent", "zz-not-a-trace~"), ("x-model-serving-caller", "\x7e"))
    )
    assert code == grpc.StatusCode.OK
    for method in (stub.RepositoryModelUnload, stub.RepositoryModelLoad):
        with pytest.raises(grpc.RpcError) as caught:
            method(pb.RepositoryModelUnloadRequest(model_name=MODEL), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "PREDICTOR_MANAGEMENT_PORT" in (caught.value.details() or "")
    ready = stub.ModelReady(pb.ModelReadyRequest(name=MODEL), timeout=10)
    assert ready.ready is True
