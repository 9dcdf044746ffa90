"""Management only on its own port, deadlines and shedding on the predictor.

* Repository management is absent on the inference ports (REST 404, gRPC UNIMPLEMENTED) and, when
  ``PREDICTOR_MANAGEMENT_PORT`` is set, served there only.
* A gRPC call whose deadline passes while it runs is DEADLINE_EXCEEDED for the client *and* in
  ``predictor_requests_total`` (never counted OK).
* More requests than ``PREDICTOR_MAX_INFLIGHT`` / ``PREDICTOR_GRPC_MAX_INFLIGHT`` at once: 503 with
  ``Retry-After`` / RESOURCE_EXHAUSTED, and the requests admitted are answered 200 / OK.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from hardening_stack import MODEL, ROW, V2_OK, metric_value
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from support import PredictorProcess, free_port, predictor_process

GOOD = pb.ModelInferRequest(
    model_name=MODEL,
    inputs=[
        pb.ModelInferRequest.InferInputTensor(
            name="input", datatype="FP32", shape=[1, 10], contents=pb.InferTensorContents(fp32_contents=ROW)
        )
    ],
)


@pytest.fixture(scope="module")
def slow(
    gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PredictorProcess, int]]:
    """Every inference takes 400 ms; two REST requests and two gRPC calls at once at most;
    management on its own port."""
    management = free_port()
    p = predictor_process(
        gbm_bundle,
        tmp_path_factory.mktemp("overload") / "predictor.log",
        env={
            "PREDICTOR_FAULT_DELAY_MS": "400",
            "PREDICTOR_MAX_INFLIGHT": "2",
            "PREDICTOR_GRPC_MAX_INFLIGHT": "2",
            "PREDICTOR_MANAGEMENT_PORT": str(management),
        },
        extra=["--max_threads", "4"],
    )
    p.process.start()
    yield p, management
    assert p.process.stop() == 0


def test_management_is_served_on_its_own_port_only(slow: tuple[PredictorProcess, int]) -> None:
    p, management = slow
    r = httpx.post(f"{p.http}/v2/repository/models/{MODEL}/unload", timeout=10)
    assert r.status_code == 404 and "PREDICTOR_MANAGEMENT_PORT" in r.json()["error"]
    base = f"http://127.0.0.1:{management}"
    assert httpx.post(f"{base}/v2/models/{MODEL}/infer", content=V2_OK, timeout=10).status_code == 404
    assert httpx.get(f"{base}/v2/repository/models/{MODEL}/unload", timeout=10).status_code == 405
    r = httpx.post(f"{base}/v2/repository/models/nope/unload", timeout=10)
    assert r.status_code == 404 and "nope" in r.json()["error"]  # KServe's own answer, reached
    with grpc.insecure_channel(p.grpc) as channel, pytest.raises(grpc.RpcError) as caught:
        GRPCInferenceServiceStub(channel).RepositoryModelUnload(
            pb.RepositoryModelUnloadRequest(model_name=MODEL), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_grpc_call_past_its_deadline_is_not_counted_ok(slow: tuple[PredictorProcess, int]) -> None:
    p, _ = slow
    before = httpx.get(f"{p.http}/metrics", timeout=10).text
    with grpc.insecure_channel(p.grpc) as channel, pytest.raises(grpc.RpcError) as caught:
        GRPCInferenceServiceStub(channel).ModelInfer(GOOD, timeout=0.1)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    labels = {"model_name": MODEL, "protocol": "grpc_v2", "caller": "client"}
    for _ in range(50):  # the server notices when its 400 ms are over (bounded wait)
        after = httpx.get(f"{p.http}/metrics", timeout=10).text
        if metric_value(after, "predictor_requests_total", code="DEADLINE_EXCEEDED", **labels) > metric_value(
            before, "predictor_requests_total", code="DEADLINE_EXCEEDED", **labels
        ):
            break
        threading.Event().wait(0.1)
    assert metric_value(after, "predictor_requests_total", code="DEADLINE_EXCEEDED", **labels) == 1.0
    assert metric_value(after, "predictor_requests_total", code="OK", **labels) == metric_value(
        before, "predictor_requests_total", code="OK", **labels
    )


def test_rest_beyond_max_inflight_is_503_with_retry_after(slow: tuple[PredictorProcess, int]) -> None:
    p, _ = slow
    barrier = threading.Barrier(6)

    def call(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            barrier.wait(timeout=30)
            return client.post(p.infer_url, content=V2_OK)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(call, range(6)))
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    for r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert "PREDICTOR_MAX_INFLIGHT" in r.json()["error"]
        else:
            assert r.json()["outputs"][0]["name"] == "label"


def test_grpc_beyond_max_inflight_is_resource_exhausted(slow: tuple[PredictorProcess, int]) -> None:
    p, _ = slow
    barrier = threading.Barrier(6)

    def call(_: int) -> grpc.StatusCode:
        with grpc.insecure_channel(p.grpc) as channel:
            stub = GRPCInferenceServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=10)  # connected before the burst, no RPC
            barrier.wait(timeout=30)
            try:
                stub.ModelInfer(GOOD, timeout=30)
            except grpc.RpcError as e:
                return e.code()
            return grpc.StatusCode.OK

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(call, range(6)))
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert grpc.StatusCode.OK in codes and grpc.StatusCode.RESOURCE_EXHAUSTED in codes, codes
