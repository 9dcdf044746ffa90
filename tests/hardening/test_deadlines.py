"""Per-request deadlines through the transformer -> predictor hop (issue 15, item 4).

A real predictor that takes 1.5 s per inference (``PREDICTOR_FAULT_DELAY_MS``) behind real
transformers (gRPC and REST hops, 10 s configured timeout), and a transformer in front of the fake
predictor (to see what the hop sends):

* ``x-envoy-expected-rq-timeout-ms: 300`` bounds the hop: 504 naming the deadline, not the 10 s.
* A deadline already passed (``0`` ms, or ``grpc-timeout`` shorter than the margin) is answered 504
  / DEADLINE_EXCEEDED without calling the predictor (its request counter is unchanged) and counted
  in ``transformer_deadline_expired_total``.
* Invalid values (non-numeric, negative, huge, empty) are ignored: the request is served as if the
  header were absent.
* Over REST the hop sends ``x-envoy-expected-rq-timeout-ms`` with the time left (never more than the
  caller gave).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
from fake_predictor import FakePredictor
from hardening_stack import MODEL, metric_value
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from model_stack import Server, component, started_together
from serving_common.framework.predictor_client import request_deadline

ENVOY = "x-envoy-expected-rq-timeout-ms"
RECORD = {
    "age": 59.0, "sex": "female", "bmi": 32.1, "bp": 101.0, "tc": 157.0,
    "ldl": 93.2, "hdl": 38.0, "tch": 4.0, "ltg": 4.8598, "glu": 87.0,
}  # fmt: skip
V1_OK = orjson.dumps({"instances": [RECORD]})
V2_OK = orjson.dumps(
    {
        "inputs": [
            {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP32", "data": [v]}
            for k, v in RECORD.items()
        ]
    }
)


@dataclass
class Stack:
    predictor: Server
    via_grpc: Server
    via_rest: Server
    to_fake: Server
    explainer: Server
    fake: FakePredictor


class Explainer(Server):
    V1_VERB = ":explain"
    V2_VERB = "/explain"


@pytest.fixture(scope="module")
def stack(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("deadlines")
    bundle = ["--model_dir", str(gbm_bundle)]
    fake = FakePredictor().start()
    predictor = component(
        "predictor", bundle, logs / "predictor.log", env={"PREDICTOR_FAULT_DELAY_MS": "1500"}
    )

    def transformer(name: str, host: str, protocol: str) -> Server:
        return component(
            "transformer",
            [*bundle, "--predictor_host", host, "--predictor_protocol", protocol],
            logs / f"transformer-{name}.log",
            env={"TRANSFORMER_PREDICTOR_TIMEOUT": "10"},
        )

    s = Stack(
        predictor=predictor,
        via_grpc=transformer("grpc", predictor.grpc, "grpc-v2"),
        via_rest=transformer("rest", f"127.0.0.1:{predictor.http_port}", "v2"),
        to_fake=transformer("fake", fake.http_host, "v2"),
        explainer=component(
            "explainer",
            [*bundle, "--predictor_host", predictor.grpc, "--predictor_protocol", "grpc-v2"],
            logs / "explainer.log",
            env={"EXPLAINER_PREDICTOR_TIMEOUT": "10"},
            kind=Explainer,
            ready_timeout=120.0,
        ),
        fake=fake,
    )
    try:
        with started_together([s.predictor, s.via_grpc, s.via_rest, s.to_fake, s.explainer]):
            yield s
    finally:
        fake.stop()


def _predictor_requests(p: Server) -> float:
    """Every request the predictor has counted, whatever its protocol, code and caller."""
    text = httpx.get(f"{p.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("predictor_requests_total{") and f'model_name="{MODEL}"' in line
    )


def _settled(p: Server, before: float) -> None:
    """Wait (bounded) until the predictor has counted the call a deadline cut short, so it does not
    land in a later test's count."""
    for _ in range(300):
        if _predictor_requests(p) > before:
            return
        time.sleep(0.05)
    raise AssertionError("the predictor never counted the call the deadline cut short")


def _expired(t: Server, component: str = "transformer") -> float:
    text = httpx.get(f"{t.url}/metrics", timeout=10).text
    return metric_value(text, f"{component}_deadline_expired_total", model_name=MODEL)


@pytest.mark.parametrize("hop", ["via_grpc", "via_rest"])
def test_the_callers_deadline_bounds_the_predictor_hop(stack: Stack, hop: str) -> None:
    transformer: Server = getattr(stack, hop)
    before = _predictor_requests(stack.predictor)
    r = httpx.post(transformer.v2, content=V2_OK, headers={ENVOY: "300"}, timeout=30)
    assert r.status_code == 504, r.text
    message = r.json()["error"]
    assert "did not answer within the request's deadline" in message
    assert "10 s" not in message  # not the configured TRANSFORMER_PREDICTOR_TIMEOUT
    assert "127.0.0.1" not in message
    _settled(stack.predictor, before)  # the predictor was called, and its call cut short


@pytest.mark.parametrize(
    "headers",
    [{ENVOY: "0"}, {"grpc-timeout": "1m"}, {ENVOY: "5000", "grpc-timeout": "0S"}],
    ids=["envoy-0", "grpc-timeout-1ms", "sooner-of-both"],
)
@pytest.mark.parametrize("hop", ["via_grpc", "via_rest"])
def test_an_expired_deadline_never_reaches_the_predictor(
    stack: Stack, hop: str, headers: dict[str, str]
) -> None:
    transformer: Server = getattr(stack, hop)
    before, expired = _predictor_requests(stack.predictor), _expired(transformer)
    for url, body in ((transformer.v2, V2_OK), (transformer.v1, V1_OK)):
        r = httpx.post(url, content=body, headers=headers, timeout=30)
        assert r.status_code == 504, r.text
        assert "deadline passed before the predictor was called" in r.json()["error"]
    assert _expired(transformer) == expired + 2
    assert _predictor_requests(stack.predictor) == before


def test_an_expired_grpc_call_is_deadline_exceeded(stack: Stack) -> None:
    request = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name=k,
                datatype="BYTES" if isinstance(v, str) else "FP32",
                shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[v.encode()])
                if isinstance(v, str)
                else pb.InferTensorContents(fp32_contents=[v]),
            )
            for k, v in RECORD.items()
        ],
    )
    before = _predictor_requests(stack.predictor)
    with grpc.insecure_channel(stack.via_grpc.grpc) as channel, pytest.raises(grpc.RpcError) as caught:
        GRPCInferenceServiceStub(channel).ModelInfer(request, metadata=((ENVOY, "0"),), timeout=30)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline passed before the predictor was called" in (caught.value.details() or "")
    assert _predictor_requests(stack.predictor) == before


BAD = ["abc", "-5", "+300", "1e3", "0x12c", "99999999999999999999", "", "12.5", "٣٠٠"]


@pytest.mark.parametrize("value", BAD)
def test_invalid_values_are_ignored(stack: Stack, value: str) -> None:
    stack.fake.mode = "ok"
    stack.fake.seen.clear()
    headers = {ENVOY: value, "grpc-timeout": value or "x"}
    r = httpx.post(
        stack.to_fake.v2,
        content=V2_OK,
        headers=[(k.encode(), v.encode("utf-8")) for k, v in headers.items()],
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert len(stack.fake.seen) == 1 and ENVOY not in stack.fake.seen[0]


def test_the_rest_hop_sends_the_time_left(stack: Stack) -> None:
    stack.fake.mode = "ok"
    stack.fake.seen.clear()
    r = httpx.post(stack.to_fake.v2, content=V2_OK, headers={ENVOY: "5000"}, timeout=30)
    assert r.status_code == 200, r.text
    sent = stack.fake.seen[0].get(ENVOY)
    assert sent is not None and sent.isdigit() and 0 < int(sent) < 5000
    stack.fake.seen.clear()
    r = httpx.post(stack.to_fake.v2, content=V2_OK, timeout=30)  # no deadline: nothing invented
    assert r.status_code == 200 and ENVOY not in stack.fake.seen[0]


@pytest.mark.parametrize(
    ("headers", "left"),
    [
        ({ENVOY: "250"}, 0.25),
        ({"grpc-timeout": "2S"}, 2.0),
        ({"grpc-timeout": "1500m"}, 1.5),
        ({"GRPC-Timeout": "3M", ENVOY: "120000"}, 120.0),
        ({ENVOY: "0"}, 0.0),
        ({ENVOY: "-1"}, None),
        ({ENVOY: "abc"}, None),
        ({ENVOY: "100000000000"}, None),
        ({"grpc-timeout": "123456789S"}, None),
        ({"grpc-timeout": "10x"}, None),
        ({}, None),
    ],
)
def test_request_deadline_parsing(headers: dict[str, str], left: float | None) -> None:
    now = time.monotonic()
    deadline = request_deadline(headers, now=now)
    assert (deadline - now if deadline is not None else None) == (
        pytest.approx(left) if left is not None else None
    )


def test_the_explainer_honours_the_callers_deadline(stack: Stack) -> None:
    before, expired = _predictor_requests(stack.predictor), _expired(stack.explainer, "explainer")
    r = httpx.post(stack.explainer.v1, content=V1_OK, headers={ENVOY: "0"}, timeout=30)
    assert r.status_code == 504, r.text
    assert "deadline passed before the predictor was called" in r.json()["error"]
    assert _expired(stack.explainer, "explainer") == expired + 1
    assert _predictor_requests(stack.predictor) == before
    r = httpx.post(stack.explainer.v1, content=V1_OK, headers={ENVOY: "300"}, timeout=30)
    assert r.status_code == 504, r.text
    assert "did not answer within the request's deadline" in r.json()["error"]
    _settled(stack.predictor, before)
