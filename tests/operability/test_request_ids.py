"""Issue 16: ``x-request-id`` on every response of every component, whoever answers it (the route,
the gate's 413, the framework's 404, a predictor hop's 503), REST V1 and V2, success and error;
the caller's id is echoed, otherwise one is made, and the access line carries the same id. gRPC:
the ``ModelInfer`` answer's initial metadata carries it (OK and errors)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from model_stack import MODEL, Server, component, started_together
from support import VENV_DRIFT_PYTHON, ServerProcess, free_port

MAX_BODY = 4096
"""``<PREFIX>_MAX_BODY_BYTES`` of the transformer, explainer and drift detector: a bigger body is 413."""
PREDICTOR_MAX_BODY = 65536
"""The predictor's (the explainer's perturbation batches are bigger than :data:`MAX_BODY`)."""
RECORD = {
    "age": 59.0, "sex": "female", "bmi": 32.1, "bp": 101.0, "tc": 157.0,
    "ldl": 93.2, "hdl": 38.0, "tch": 4.0, "ltg": 4.8598, "glu": 87.0,
}  # fmt: skip
ROW = [59.0, 0.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
BIG = {"instances": [{"pad": "x" * (2 * MAX_BODY)}]}
PREDICTOR_BIG = {"instances": [[0.5] * (PREDICTOR_MAX_BODY // 2)]}
INFER_V2 = {"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": ROW}]}


def _columns(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
            for k, v in record.items()
        ]
    }


@dataclass
class Component:
    url: str
    log: Path
    access_log: bool = True
    grpc: str | None = None

    def access_ids(self) -> list[str]:
        lines = [json.loads(ln) for ln in self.log.read_text().splitlines() if ln.strip().startswith("{")]
        return [str(d.get("request_id")) for d in lines if d.get("logger") == "uvicorn.access"]


@dataclass
class Stack:
    components: dict[str, Component] = field(default_factory=dict)


@pytest.fixture(scope="module")
def stack(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("request-ids")
    bundle = ["--model_dir", str(gbm_bundle)]
    limit = str(MAX_BODY)
    predictor = component(
        "predictor",
        bundle,
        logs / "predictor.log",
        {"PREDICTOR_ACCESS_LOG": "true", "PREDICTOR_MAX_BODY_BYTES": str(PREDICTOR_MAX_BODY)},
    )
    hop = ["--predictor_host", f"127.0.0.1:{predictor.grpc_port}", "--predictor_protocol", "grpc-v2"]
    transformer = component(
        "transformer",
        [*bundle, *hop],
        logs / "transformer.log",
        {"TRANSFORMER_ACCESS_LOG": "true", "TRANSFORMER_MAX_BODY_BYTES": limit},
    )
    down = component(  # its predictor is a port nobody listens on: 503
        "transformer",
        [*bundle, "--predictor_host", f"127.0.0.1:{free_port()}", "--predictor_protocol", "grpc-v2"],
        logs / "transformer-down.log",
        {"TRANSFORMER_ACCESS_LOG": "true", "TRANSFORMER_PREDICTOR_TIMEOUT": "1"},
    )
    explainer = component(
        "explainer",
        [*bundle, *hop],
        logs / "explainer.log",
        {"EXPLAINER_MAX_BODY_BYTES": limit, "EXPLAINER_NSAMPLES": "64"},
        ready_timeout=120.0,
    )
    drift_port = free_port()
    drift = ServerProcess(
        ["-m", "drift_detector", *bundle, "--http_port", str(drift_port), "--host", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{drift_port}/ready",
        python=VENV_DRIFT_PYTHON,
        env={
            "DRIFT_BACKEND": "scipy",
            "DRIFT_MAX_BODY_BYTES": limit,
            "DRIFT_FEEDBACK_DB_URL": f"sqlite:///{logs / 'feedback.db'}",
        },
        log_path=logs / "drift.log",
    )
    servers: list[Server] = [predictor, transformer, down, explainer]
    with started_together(servers):
        drift.start()
        try:
            yield Stack(
                {
                    "predictor": Component(predictor.url, logs / "predictor.log", grpc=predictor.grpc),
                    "transformer": Component(
                        transformer.url, logs / "transformer.log", grpc=transformer.grpc
                    ),
                    "transformer-down": Component(down.url, logs / "transformer-down.log"),
                    "explainer": Component(explainer.url, logs / "explainer.log", grpc=explainer.grpc),
                    "drift": Component(
                        f"http://127.0.0.1:{drift_port}", logs / "drift.log", access_log=False
                    ),
                }
            )
        finally:
            drift.stop()


M = f"/v1/models/{MODEL}"
V2 = f"/v2/models/{MODEL}"
CASES: list[Any] = [
    # component, method, path, JSON body, expected status
    ("predictor", "POST", f"{M}:predict", {"instances": [ROW]}, 200),
    ("predictor", "POST", f"{V2}/infer", INFER_V2, 200),
    ("predictor", "GET", V2, None, 200),
    ("predictor", "POST", f"{M}:predict", {"instances": [[1.0]]}, 400),
    ("predictor", "POST", f"{V2}/infer", {"inputs": "no"}, 400),
    ("predictor", "POST", "/v1/models/nope:predict", {"instances": [ROW]}, 404),
    ("predictor", "GET", "/v2/models/nope", None, 404),
    ("predictor", "POST", f"{M}:predict", PREDICTOR_BIG, 413),
    ("transformer", "POST", f"{M}:predict", {"instances": [RECORD]}, 200),
    ("transformer", "POST", f"{V2}/infer", _columns(RECORD), 200),
    ("transformer", "GET", V2, None, 200),
    ("transformer", "POST", f"{M}:predict", {"instances": [{**RECORD, "age": "old"}]}, 400),
    ("transformer", "POST", f"{V2}/infer", {"inputs": "no"}, 400),
    ("transformer", "POST", "/v1/models/nope:predict", {"instances": [RECORD]}, 404),
    ("transformer", "GET", "/v2/models/nope", None, 404),
    ("transformer", "POST", f"{M}:predict", BIG, 413),
    ("transformer-down", "POST", f"{M}:predict", {"instances": [RECORD]}, 503),
    ("transformer-down", "POST", f"{V2}/infer", _columns(RECORD), 503),
    ("explainer", "POST", f"{M}:explain", {"instances": [RECORD]}, 200),
    ("explainer", "POST", f"{V2}/explain", _columns(RECORD), 200),
    ("explainer", "POST", f"{M}:explain", {"instances": [{**RECORD, "sex": "x"}]}, 400),
    ("explainer", "POST", "/v1/models/nope:explain", {"instances": [RECORD]}, 404),
    ("explainer", "GET", "/v2/models/nope", None, 404),
    ("explainer", "POST", f"{M}:explain", BIG, 413),
    ("drift", "GET", "/status", None, 200),
    ("drift", "POST", f"{M}:feedback", {"instances": [{"id": "never-predicted", "label": 1}]}, 422),
    ("drift", "POST", f"{M}:feedback", {"pairs": []}, 400),
    ("drift", "GET", "/nope", None, 404),
    ("drift", "POST", "/", {"pad": "x" * (2 * MAX_BODY)}, 413),
]  # fmt: skip


def _call(c: Component, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    content = None if body is None else json.dumps(body).encode()
    if content is not None:
        headers = {**headers, "content-type": "application/json"}
    return httpx.request(method, f"{c.url}{path}", content=content, headers=headers, timeout=60)


def _access_line_names(c: Component, rid: str) -> bool:
    """Whether an access line with ``rid`` is (or within a bounded wait becomes) in the log."""
    deadline = time.monotonic() + 10
    while rid not in c.access_ids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _id(case: Any) -> str:
    name, method, path, _, status = case.values if hasattr(case, "values") else case
    return f"{name}-{method}-{path.rsplit('/', 1)[-1]}-{status}"


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "status"),
    CASES,
    ids=[_id(c) for c in CASES],
)
def test_every_answer_carries_the_request_id(
    stack: Stack, name: str, method: str, path: str, body: Any, status: int
) -> None:
    c = stack.components[name]
    rid = f"rid-{name}-{status}-{abs(hash((method, path))) % 10**8}"
    echoed = _call(c, method, path, body, {"x-request-id": rid})
    assert echoed.status_code == status, echoed.text
    assert echoed.headers.get_list("x-request-id") == [rid]
    made = _call(c, method, path, body, {})
    assert made.status_code == status, made.text
    (generated,) = made.headers.get_list("x-request-id")
    assert generated and generated != rid
    if c.access_log:
        assert _access_line_names(c, rid), f"no access line with {rid} in {c.log}"
        assert _access_line_names(c, generated), f"no access line with {generated} in {c.log}"


def _infer_request(ok: bool) -> pb.ModelInferRequest:
    raw = RECORD if ok else {**RECORD, "age": "old"}
    tensors = [
        pb.ModelInferRequest.InferInputTensor(
            name=k,
            datatype="BYTES" if isinstance(v, str) else "FP64",
            shape=[1],
            contents=pb.InferTensorContents(bytes_contents=[v.encode()])
            if isinstance(v, str)
            else pb.InferTensorContents(fp64_contents=[v]),
        )
        for k, v in raw.items()
    ]
    return pb.ModelInferRequest(model_name=MODEL, inputs=tensors)


def _predictor_request(ok: bool) -> pb.ModelInferRequest:
    values = ROW if ok else ROW[:3]
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype="FP32",
        shape=[1, len(values)],
        contents=pb.InferTensorContents(fp32_contents=values),
    )
    return pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])


def _grpc_ids(
    target: str, request: pb.ModelInferRequest, metadata: list[tuple[str, str]]
) -> tuple[str, list[str]]:
    """(status code name, the answer's ``x-request-id`` initial metadata values)."""
    with grpc.insecure_channel(target) as channel:
        call = GRPCInferenceServiceStub(channel).ModelInfer.with_call
        try:
            _, answer = call(request, metadata=metadata, timeout=60)
            code, initial = "OK", answer.initial_metadata()
        except grpc.RpcError as e:
            code, initial = e.code().name, e.initial_metadata()  # type: ignore[attr-defined]
    return code, [v for k, v in initial or () if k == "x-request-id"]


GRPC_CASES = [
    ("transformer", True, "OK"),
    ("transformer", False, "INVALID_ARGUMENT"),
    ("explainer", False, "INVALID_ARGUMENT"),  # (the explainer explains over REST; its gRPC checks records)
]


@pytest.mark.parametrize(
    ("name", "ok", "code"),
    [
        *GRPC_CASES,
        ("predictor", True, "OK"),
        ("predictor", False, "INVALID_ARGUMENT"),
    ],
)
def test_grpc_answers_carry_the_request_id(stack: Stack, name: str, ok: bool, code: str) -> None:
    c = stack.components[name]
    assert c.grpc is not None
    build = _predictor_request if name == "predictor" else _infer_request
    rid = f"rid-grpc-{name}-{code}"
    assert _grpc_ids(c.grpc, build(ok), [("x-request-id", rid)]) == (code, [rid])
    got, made = _grpc_ids(c.grpc, build(ok), [])
    assert got == code
    assert len(made) == 1 and made[0] and made[0] != rid
    if name == "transformer" and code != "OK":  # gRPC has no access line: its failure line names the id
        assert _logged(c, rid, "gRPC request failed"), f"no failure line with {rid} in {c.log}"
        assert _logged(c, made[0], "gRPC request failed"), f"no failure line with {made[0]} in {c.log}"


def _logged(c: Component, rid: str, fragment: str) -> bool:
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(ln) for ln in c.log.read_text().splitlines() if ln.strip().startswith("{")]
        if any(d.get("request_id") == rid and fragment in str(d.get("message")) for d in lines):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("name", ["predictor", "transformer"])
@pytest.mark.parametrize("body_id", ["\x1f", "line\nbreak", "é", "x" * 300, "ok-id-1"])
def test_a_grpc_request_id_that_cannot_be_metadata_gets_a_new_one(
    stack: Stack, name: str, body_id: str
) -> None:
    """A V2 request's own ``id`` is any string: one that cannot travel as a header or metadata value
    (control characters, non-ASCII, over 256 characters; echoed, it is an INTERNAL error, and the
    payload log's ``ce-id`` is a header too) is replaced by a new id, the same in the answer's
    ``id`` and its ``x-request-id``; a good one is kept in both."""
    c = stack.components[name]
    assert c.grpc is not None
    request = (_predictor_request if name == "predictor" else _infer_request)(True)
    request.id = body_id
    with grpc.insecure_channel(c.grpc) as channel:
        answer, call = GRPCInferenceServiceStub(channel).ModelInfer.with_call(request, timeout=60)
    ids = [v for k, v in call.initial_metadata() or () if k == "x-request-id"]
    assert len(ids) == 1 and ids[0]
    if body_id == "ok-id-1":
        assert ids == [body_id] and answer.id == body_id
    else:
        assert ids[0] != body_id and ids[0].isascii() and ids[0].isprintable()
        assert answer.id == ids[0]
