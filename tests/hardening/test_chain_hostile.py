"""Hostile clients against the real transformer and explainer (each in front of a real predictor):
2,000 generated REST requests each (records of the bundle's features with wrong, missing, extra,
huge, NaN and non-ASCII values; V1, V2 columns, V2 ``records``; junk bodies, paths, verbs and
headers), 2,000 generated gRPC messages to the transformer, and issue 15's hand-made cases. No
answer is a 5xx, every refusal names the problem without internals, and management is absent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import orjson
import pytest
from hardening_stack import MODEL, assert_client_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from model_stack import Server, component, started_together

CASES = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NUMERIC = ["age", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu"]
GOOD_RECORD: dict[str, Any] = {
    "age": 60.0,
    "sex": "female",
    "bmi": 45.0,
    "bp": 140.0,
    "tc": 275.0,
    "ldl": 205.0,
    "hdl": 102.5,
    "tch": 10.25,
    "ltg": 5.0,
    "glu": 310.0,
}
"""Mid-range values of the bundle's feature spec: a record the model accepts."""
_CLIENTS: dict[str, httpx.Client] = {}


@pytest.fixture(scope="module")
def chain(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    logs = tmp_path_factory.mktemp("chain-hostile")
    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = component("predictor", bundle, logs / "predictor.log")
    transformer = component(
        "transformer",
        [*bundle, "--predictor_host", predictor.grpc, "--predictor_protocol", "grpc-v2"],
        logs / "transformer.log",
    )
    explainer = component(
        "explainer",
        [*bundle, "--predictor_host", predictor.grpc, "--predictor_protocol", "grpc-v2"],
        logs / "explainer.log",
        env={"EXPLAINER_NSAMPLES": "16", "EXPLAINER_MAX_RECORDS": "4"},
        ready_timeout=120.0,
    )
    with started_together([predictor, transformer, explainer]):
        yield transformer, explainer
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["female", "male", "FEMALE", "\u00e9", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
record = st.fixed_dictionaries(
    {},
    optional={
        **{n: st.floats(-1, 1) | scalars for n in NUMERIC},
        "sex": st.sampled_from(["female", "male"]) | scalars,
        "extra": values,
    },
) | st.just(GOOD_RECORD)
records = st.lists(record, max_size=4)
v1 = st.fixed_dictionaries({"instances": records | values})
columns = st.builds(
    lambda rows, datatype: {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows)],
                "datatype": "BYTES" if name == "sex" else datatype,
                "data": [r.get(name) for r in rows],
            }
            for name in [*NUMERIC, "sex"]
        ]
    },
    records,
    st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "x"]),
)
records_input = st.builds(
    lambda rows, shape: {
        "inputs": [
            {"name": "records", "shape": shape, "datatype": "BYTES", "data": [json.dumps(r) for r in rows]}
        ]
    },
    st.lists(record | values, max_size=4),
    st.lists(st.integers(-1, 5), max_size=2),
)


def _dump(document: Any) -> bytes:
    try:
        return json.dumps(document).encode()  # NaN / Infinity literals included
    except (ValueError, TypeError):
        return b"{}"


bodies = st.one_of(
    st.builds(_dump, v1 | columns | records_input | values),
    st.binary(max_size=100),
    st.builds(lambda n, c: c * n, st.integers(1, 3000), st.sampled_from([b"[", b"{", b'{"a":'])),
)
# DEL (0x7f) is not valid in a header: uvicorn's HTTP parser answers its own plain 400 (no JSON)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30
).map(lambda v: v.strip(" \t"))
headers = st.fixed_dictionaries(
    {},
    optional={
        "traceparent": header_values,
        "x-request-id": header_values,
        "authorization": header_values,
        "content-type": st.sampled_from(["application/json", "text/plain"]) | header_values,
        "inference-header-content-length": st.integers(-2, 100).map(str) | header_values,
    },
)
PATHS = {
    "infer": [f"/v1/models/{MODEL}:predict", f"/v2/models/{MODEL}/infer"],
    "explain": [f"/v1/models/{MODEL}:explain", f"/v2/models/{MODEL}/explain"],
    "other": [
        f"/v2/repository/models/{MODEL}/unload",
        f"/v2/models/{MODEL}/ready",
        f"/v2/models/{MODEL}",
        "/v2/health/ready",
        "/docs",
        "/v2/models/other/infer",
    ],
}


def _request(server: Server, method: str, path: str, header: dict[str, str], body: bytes) -> httpx.Response:
    url = httpx.URL(server.url).copy_with(raw_path=quote(path, safe="/:@!$&'()*+,;=~").encode())
    encoded = {k: v.encode("latin-1") for k, v in header.items()}
    client = _CLIENTS.get(server.url)
    if client is None:  # one keep-alive client per server for the whole module
        client = _CLIENTS[server.url] = httpx.Client(timeout=60)
    return client.request(method, url, headers=encoded, content=body)


def _fuzz(own: str) -> Any:
    return given(
        method=st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE"]),
        path=st.sampled_from(PATHS[own])
        | st.sampled_from([p for k, ps in PATHS.items() if k != own for p in ps]),
        header=headers,
        body=bodies,
    )


@CASES
@_fuzz("infer")
def test_generated_requests_to_the_transformer(
    chain: tuple[Server, Server], method: str, path: str, header: dict[str, str], body: bytes
) -> None:
    r = _request(chain[0], method, path, header, body)
    assert_client_error(r.status_code, r.content, f"{method} {path} {header} {body[:150]!r}")


@CASES
@_fuzz("explain")
def test_generated_requests_to_the_explainer(
    chain: tuple[Server, Server], method: str, path: str, header: dict[str, str], body: bytes
) -> None:
    r = _request(chain[1], method, path, header, body)
    assert_client_error(r.status_code, r.content, f"{method} {path} {header} {body[:150]!r}")


def _hand_made(verb: str) -> list[tuple[str, str, dict[str, str], bytes, int]]:
    v1 = f"/v1/models/{MODEL}{':predict' if verb == 'infer' else ':explain'}"
    v2 = f"/v2/models/{MODEL}/{verb}"
    good = orjson.dumps({"instances": [GOOD_RECORD]})
    fp64 = {
        "inputs": [
            {"name": n, "shape": [2], "datatype": "FP64", "data": [float("nan"), 1e20]} for n in NUMERIC
        ]
        + [{"name": "sex", "shape": [2], "datatype": "BYTES", "data": ["female", "male"]}]
    }
    return [
        ("100,000-deep [", v1, {}, b"[" * 100_000, 400),
        (
            'records BYTES ["{}"]',
            v2,
            {},
            b'{"inputs":[{"name":"records","shape":[1],"datatype":"BYTES","data":["{}"]}]}',
            400,
        ),
        ("FP64 column [NaN, 1e20]", v2, {}, json.dumps(fp64).encode(), 400),
        ("non-ASCII traceparent", v1, {"traceparent": "\u00e9t\u00e9"}, good, 200),
        ("Authorization over 16 KB", v1, {"authorization": "Bearer " + "x" * 17_000}, good, 200),
        (
            "200 records with 10k extra fields",
            v1,
            {},
            orjson.dumps({"instances": [GOOD_RECORD | {f"x{i}": 1 for i in range(10_000)}] * 200}),
            413,
        ),
        (
            "one record with 5,000 extra fields",
            v1,
            {},
            orjson.dumps({"instances": [GOOD_RECORD | {f"x{i}": 1 for i in range(5_000)}]}),
            400,
        ),
        ("unload the model", f"/v2/repository/models/{MODEL}/unload", {}, b"", 404),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["transformer", "explainer"])
def test_hand_made_cases(chain: tuple[Server, Server], which: int) -> None:
    server = chain[which]
    for what, path, header, body, status in _hand_made("infer" if which == 0 else "explain"):
        r = _request(server, "POST", path, header, body)
        assert r.status_code == status, f"{what}: {r.status_code} {r.text[:300]}"
        assert_client_error(r.status_code, r.content, what)
    other = f"/v1/models/{MODEL}:explain" if which == 0 else f"/v1/models/{MODEL}:predict"
    r = _request(server, "POST", other, {}, b"{}")
    assert r.status_code == 404, r.text  # the other component's verb: never 500 / 501
    r = _request(server, "GET", f"/v2/models/{MODEL}/{'infer' if which == 0 else 'explain'}", {}, b"")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    twenty_k = [(f"x-h{i}", "v") for i in range(20_000)]
    r = httpx.post(f"{server.url}/v1/models/{MODEL}:predict", headers=twenty_k, content=b"{}", timeout=60)
    assert r.status_code == 431, r.text


grpc_tensor = st.builds(
    lambda name, datatype, shape, values: pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**values)
    ),
    st.sampled_from([*NUMERIC, "sex", "records", "input"]) | st.text(max_size=4),
    st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "x"]),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2) | st.just([1]),
    st.fixed_dictionaries(
        {},
        optional={
            "fp64_contents": st.lists(st.floats(allow_nan=True), max_size=3),
            "int64_contents": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
            "bytes_contents": st.lists(st.binary(max_size=12) | st.just(b"female"), max_size=3),
        },
    ),
)
grpc_requests = st.builds(
    lambda model, inputs, raw: pb.ModelInferRequest(model_name=model, inputs=inputs, raw_input_contents=raw),
    st.sampled_from([MODEL, MODEL, "other"]),
    st.lists(grpc_tensor, max_size=11),
    st.lists(st.binary(max_size=24), max_size=3) | st.just([]),
)


@pytest.fixture(scope="module")
def transformer_stub(chain: tuple[Server, Server]) -> Iterator[Any]:
    with grpc.insecure_channel(chain[0].grpc) as channel:
        yield GRPCInferenceServiceStub(channel)


@CASES
@given(request=grpc_requests)
def test_generated_grpc_messages_to_the_transformer(
    transformer_stub: Any, request: pb.ModelInferRequest
) -> None:
    try:
        transformer_stub.ModelInfer(request, timeout=30)
    except grpc.RpcError as e:
        assert e.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}, (
            e.code(),
            e.details(),
            request,
        )
        assert e.details() and "0x" not in e.details()


def test_grpc_management_is_absent_on_the_transformer(transformer_stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        transformer_stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not served" in (caught.value.details() or "")
