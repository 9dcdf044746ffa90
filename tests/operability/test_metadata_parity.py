"""Issue 16 (5): model and server metadata are the same over REST and gRPC, for every component that
offers both (predictor, transformer, explainer): name, platform, versions (the served bundle's
version), inputs and outputs. Real processes, a real REST client (tritonclient.http) and KServe's
own gRPC stubs over real sockets.

Normalised only where the protocols cannot differ in meaning: gRPC's ``int64`` shapes arrive as JSON
strings from ``MessageToDict``, gRPC has no ``null`` (REST ``"versions": null`` is gRPC's empty
list), and empty ``parameters`` maps are absent in REST JSON."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import tritonclient.http as httpclient
from google.protobuf.json_format import MessageToDict
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from serving_common import Bundle
from support import MODEL, ServerProcess, free_port

COMPONENTS = ("predictor", "transformer", "explainer")


@dataclass
class Endpoints:
    http: str
    """``127.0.0.1:PORT`` (tritonclient.http's form)."""
    grpc: str


@pytest.fixture(scope="module")
def servers(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Endpoints]]:
    logs = tmp_path_factory.mktemp("metadata-parity")
    ports = {c: (free_port(), free_port()) for c in COMPONENTS}
    hop = ["--predictor_host", f"127.0.0.1:{ports['predictor'][1]}"]
    extra = {"predictor": [], "transformer": [*hop, "--predictor_protocol", "grpc-v2"], "explainer": hop}
    started: list[ServerProcess] = []
    try:
        for component in COMPONENTS:
            http, grpc_port = ports[component]
            args = ["-m", component, "--model_name", MODEL, "--model_dir", str(gbm_bundle),
                    "--http_port", str(http), "--grpc_port", str(grpc_port), *extra[component]]  # fmt: skip
            started.append(
                ServerProcess(
                    args,
                    ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
                    log_path=logs / f"{component}.log",
                ).start()
            )
        yield {c: Endpoints(f"127.0.0.1:{h}", f"127.0.0.1:{g}") for c, (h, g) in ports.items()}
    finally:
        for server in reversed(started):
            server.stop()


def _normal(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if v not in ({}, None)}
    out["versions"] = list(doc.get("versions") or [])
    for key in ("inputs", "outputs"):
        out[key] = [
            {
                **{k: v for k, v in t.items() if k != "parameters" or v},
                "shape": [int(d) for d in t.get("shape", [])],
            }
            for t in doc.get(key) or []
        ]
    return out


def _rest_model(e: Endpoints) -> dict[str, Any]:
    client = httpclient.InferenceServerClient(e.http)
    try:
        return _normal(client.get_model_metadata(MODEL))
    finally:
        client.close()


def _grpc_call(e: Endpoints, method: str, request: Any) -> dict[str, Any]:
    with grpc.insecure_channel(e.grpc) as channel:
        answer = getattr(pb_grpc.GRPCInferenceServiceStub(channel), method)(request, timeout=10)
    return MessageToDict(answer, always_print_fields_with_no_presence=True)


def _grpc_model(e: Endpoints) -> dict[str, Any]:
    return _normal(_grpc_call(e, "ModelMetadata", pb.ModelMetadataRequest(name=MODEL)))


@pytest.mark.parametrize("component", COMPONENTS)
def test_model_metadata_is_the_same_over_rest_and_grpc(servers: dict[str, Endpoints], component: str) -> None:
    rest, over_grpc = _rest_model(servers[component]), _grpc_model(servers[component])
    assert rest == over_grpc
    assert rest["name"] == MODEL


def test_predictor_metadata_describes_the_onnx_model(servers: dict[str, Endpoints], gbm: Bundle) -> None:
    """The reference the others are held to: platform, the bundle's version, the model's tensors."""
    assert _rest_model(servers["predictor"]) == {
        "name": MODEL,
        "versions": [gbm.version],
        "platform": "onnxruntime",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 10]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ],
    }


@pytest.mark.parametrize(
    "component",
    [
        "predictor",
        "transformer",
        "explainer",
    ],
)
def test_metadata_names_the_served_bundle_version(
    servers: dict[str, Endpoints], gbm: Bundle, component: str
) -> None:
    assert gbm.version  # the trained bundle's card has one ("gbm-1")
    assert _rest_model(servers[component])["versions"] == [gbm.version]
    assert _grpc_model(servers[component])["versions"] == [gbm.version]


@pytest.mark.parametrize("component", COMPONENTS)
def test_server_metadata_is_the_same_over_rest_and_grpc(
    servers: dict[str, Endpoints], component: str
) -> None:
    client = httpclient.InferenceServerClient(servers[component].http)
    try:
        rest = client.get_server_metadata()
    finally:
        client.close()
    over_grpc = _grpc_call(servers[component], "ServerMetadata", pb.ServerMetadataRequest())
    assert rest == over_grpc
    assert rest["name"] == "kserve" and rest["version"]
    # model-repository routes are off on the inference ports (404 / UNIMPLEMENTED): not claimed
    assert rest.get("extensions", []) == []
