"""SIGTERM and kill -9 under closed-loop load, asserting what clients get.

SIGTERM (drain 1.5 s): readiness turns 503 at once and never 200 again before the port closes;
REST and gRPC inference answered during the drain, every one a 200 / OK: no accepted request is
reset, no 5xx; exit status 0, no "Task was destroyed". The load stops issuing new requests 0.3 s
before the drain period ends, as Kubernetes' proxies do once the endpoint is removed (a connection
still in the kernel's accept backlog when the listener closes is reset by the kernel: the reason
the drain period exists); the readiness poller goes on until the port is closed.
kill -9: clients get 200s, then transport errors only, never a 5xx answer.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from hardening_stack import MODEL, ROW, V2_OK, Outcomes, closed_loop, start_detector
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from support import PredictorProcess, predictor_process

GOOD = pb.ModelInferRequest(
    model_name=MODEL,
    inputs=[
        pb.ModelInferRequest.InferInputTensor(
            name="input", datatype="FP32", shape=[1, 10], contents=pb.InferTensorContents(fp32_contents=ROW)
        )
    ],
)
NEVER_ACCEPTED = "refused"
"""A REST request whose connection was refused: the server never took it."""


def rest_caller(
    url: str, body: bytes, signalled: threading.Event, headers: dict[str, str] | None = None
) -> Callable[[], str]:
    local = threading.local()

    def call() -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=20)
        after = "after:" if signalled.is_set() else ""
        try:
            r = client.post(url, content=body, headers=headers)
        except httpx.ConnectError:
            time.sleep(0.01)
            return NEVER_ACCEPTED
        except httpx.TransportError as e:
            return f"reset:{type(e).__name__}"
        return f"{after}{r.status_code}"

    return call


def grpc_caller(target: str, signalled: threading.Event) -> Callable[[], str]:
    local = threading.local()

    def call() -> str:
        stub = getattr(local, "stub", None)
        if stub is None:
            local.channel = grpc.insecure_channel(target)
            stub = local.stub = GRPCInferenceServiceStub(local.channel)
        after = "after:" if signalled.is_set() else ""
        try:
            stub.ModelInfer(GOOD, timeout=20)
        except grpc.RpcError as e:
            time.sleep(0.01)
            return f"grpc:{e.code().name}"
        return f"{after}grpc:OK"

    return call


def poll_readiness(url: str, stop: threading.Event, seen: list[str]) -> None:
    for _ in range(2000):
        if stop.is_set():
            return
        try:
            code = str(httpx.get(url, timeout=5).status_code)
        except httpx.TransportError:
            code = NEVER_ACCEPTED
        if not seen or seen[-1] != code:
            seen.append(code)
        time.sleep(0.02)


def endpoint_removed(signalled: threading.Event, stop: threading.Event, drain: float) -> threading.Timer:
    """Stop the load shortly before the drain period ends (the endpoint is gone from the proxies)."""
    timer = threading.Timer(drain - 0.3, stop.set)
    signalled.set()
    timer.start()
    return timer


def _pid(p: PredictorProcess) -> int:
    assert p.process.proc is not None
    return p.process.proc.pid


def test_sigterm_drains_the_predictor_without_resetting_accepted_requests(
    gbm_bundle: Path, tmp_path: Path
) -> None:
    log = tmp_path / "predictor.log"
    p = predictor_process(
        gbm_bundle, log, env={"PREDICTOR_DRAIN_SECONDS": "1.5", "PREDICTOR_GRACE_SECONDS": "5"}
    )
    p.process.start()
    stop, signalled, done = threading.Event(), threading.Event(), threading.Event()
    outcomes, readiness = Outcomes(), ["200"]
    threads = closed_loop(4, rest_caller(p.infer_url, V2_OK, signalled), stop, outcomes)
    threads += closed_loop(2, grpc_caller(p.grpc, signalled), stop, outcomes)
    poller = threading.Thread(
        target=poll_readiness, args=(f"{p.http}/v2/models/{MODEL}/ready", done, readiness), daemon=True
    )
    try:
        time.sleep(0.5)
        poller.start()
        timer = endpoint_removed(signalled, stop, 1.5)
        os.kill(_pid(p), signal.SIGTERM)
        assert p.process.proc is not None
        code = p.process.proc.wait(timeout=30)
        time.sleep(0.1)
    finally:
        stop.set()
        done.set()
        for t in [*threads, poller]:
            t.join(timeout=30)
        timer.cancel()
        p.process.stop()
    counts = outcomes.counts
    assert code == 0, p.process.output()
    assert readiness[:3] == ["200", "503", NEVER_ACCEPTED], readiness
    assert counts.get("after:200", 0) > 0 and counts.get("after:grpc:OK", 0) > 0, counts
    assert set(counts) <= {"200", "after:200", "grpc:OK", "after:grpc:OK"}, counts
    text = log.read_text()
    assert "Task was destroyed" not in text and "Traceback" not in text, text[-3000:]


def test_kill_9_leaves_clients_with_transport_errors_never_a_5xx(gbm_bundle: Path, tmp_path: Path) -> None:
    p = predictor_process(gbm_bundle, tmp_path / "predictor.log")
    p.process.start()
    stop, signalled = threading.Event(), threading.Event()
    outcomes = Outcomes()
    threads = closed_loop(3, rest_caller(p.infer_url, V2_OK, signalled), stop, outcomes)
    threads += closed_loop(1, grpc_caller(p.grpc, signalled), stop, outcomes)
    try:
        time.sleep(0.5)
        signalled.set()
        os.kill(_pid(p), signal.SIGKILL)
        assert p.process.proc is not None
        assert p.process.proc.wait(timeout=30) == -signal.SIGKILL
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        p.process.stop()
    counts = outcomes.counts
    assert counts.get("200", 0) > 0 and counts.get("grpc:OK", 0) > 0, counts
    assert counts.get(NEVER_ACCEPTED, 0) > 0 and counts.get("grpc:UNAVAILABLE", 0) > 0, counts
    answered = {k for k in counts if k.removeprefix("after:").isdigit()}
    assert answered <= {"200", "after:200"}, counts  # every answer that came back was a 200
    assert all(k.startswith(("reset:", "grpc:")) or k in answered or k == NEVER_ACCEPTED for k in counts), (
        counts
    )


def test_sigterm_drains_the_detector(gbm_bundle: Path, tmp_path: Path) -> None:
    from serving_common.cloudevents import REQUEST_TYPE

    log = tmp_path / "detector.log"
    d = start_detector(gbm_bundle, log, env={"DRIFT_DRAIN_SECONDS": "1.5"})
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "x",
        "ce-type": REQUEST_TYPE,
        "ce-source": "http://localhost/",
        "ce-inferenceservicename": "diabetes-risk",
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "content-type": "application/json",
    }
    stop, signalled, done = threading.Event(), threading.Event(), threading.Event()
    outcomes, readiness = Outcomes(), ["200"]
    threads = closed_loop(
        3,
        rest_caller(f"{d.url}/", b'{"instances": [[1,2,3,4,5,6,7,8,9,10]]}', signalled, headers),
        stop,
        outcomes,
    )
    poller = threading.Thread(target=poll_readiness, args=(f"{d.url}/ready", done, readiness), daemon=True)
    try:
        time.sleep(0.5)
        poller.start()
        timer = endpoint_removed(signalled, stop, 1.5)
        assert d.process.proc is not None
        os.kill(d.process.proc.pid, signal.SIGTERM)
        code = d.process.proc.wait(timeout=30)
        time.sleep(0.1)
    finally:
        stop.set()
        done.set()
        for t in [*threads, poller]:
            t.join(timeout=30)
        timer.cancel()
        d.process.stop()
    counts = outcomes.counts
    assert code == 0, d.process.output()
    assert readiness[:3] == ["200", "503", NEVER_ACCEPTED], readiness
    assert counts.get("after:200", 0) > 0, counts
    assert set(counts) <= {"200", "after:200"}, counts
    assert "Traceback" not in log.read_text()


pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("which", ["transformer", "explainer"])
def test_sigterm_drains_the_transformer_and_the_explainer(
    gbm_bundle: Path, tmp_path: Path, which: str
) -> None:
    from model_stack import component, started_together

    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = component("predictor", bundle, tmp_path / "predictor.log")
    server = component(
        which,
        [*bundle, "--predictor_host", predictor.grpc, "--predictor_protocol", "grpc-v2"],
        tmp_path / f"{which}.log",
        env={f"{which.upper()}_DRAIN_SECONDS": "1.5", "EXPLAINER_NSAMPLES": "16"},
        ready_timeout=120.0,
    )
    record = {
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
    verb = ":predict" if which == "transformer" else ":explain"
    body = json.dumps({"instances": [record]}).encode()
    stop, signalled, done = threading.Event(), threading.Event(), threading.Event()
    outcomes, readiness = Outcomes(), ["200"]
    with started_together([predictor]):
        server.process.start()
        try:
            url = f"{server.url}/v1/models/{MODEL}{verb}"
            threads = closed_loop(3, rest_caller(url, body, signalled), stop, outcomes)
            ready = f"{server.url}/v2/models/{MODEL}/ready"
            poller = threading.Thread(target=poll_readiness, args=(ready, done, readiness), daemon=True)
            time.sleep(0.5)
            poller.start()
            timer = endpoint_removed(signalled, stop, 1.5)
            assert server.process.proc is not None
            os.kill(server.process.proc.pid, signal.SIGTERM)
            for _ in range(100):  # bounded: until REST readiness is 503
                if "503" in readiness:
                    break
                time.sleep(0.01)
            with grpc.insecure_channel(server.grpc) as channel:  # gRPC readiness follows (drain: 1.5 s)
                grpc_ready = GRPCInferenceServiceStub(channel).ModelReady(
                    pb.ModelReadyRequest(name=MODEL), timeout=5
                )
            code = server.process.proc.wait(timeout=30)
            time.sleep(0.1)
        finally:
            stop.set()
            done.set()
            for t in threads:
                t.join(timeout=30)
            server.process.stop()
        poller.join(timeout=30)
        timer.cancel()
    counts = outcomes.counts
    assert code == 0, server.process.output()
    assert readiness[:3] == ["200", "503", NEVER_ACCEPTED], readiness
    assert grpc_ready.ready is False
    assert counts.get("after:200", 0) > 0, counts
    assert set(counts) <= {"200", "after:200"}, counts
    text = (tmp_path / f"{which}.log").read_text()
    assert "Task was destroyed" not in text and "Traceback" not in text, text[-3000:]


def _kill_9_under_load(
    pid: int, url: str, body: bytes, headers: dict[str, str] | None = None
) -> dict[str, int]:
    stop, signalled = threading.Event(), threading.Event()
    outcomes = Outcomes()
    threads = closed_loop(3, rest_caller(url, body, signalled, headers), stop, outcomes)
    try:
        time.sleep(0.5)
        signalled.set()
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return outcomes.counts


def test_kill_9_of_the_transformer_and_the_detector(gbm_bundle: Path, tmp_path: Path) -> None:
    """What their clients get: 200s, then refused or reset connections, never a 5xx."""
    from model_stack import component, started_together
    from serving_common.cloudevents import REQUEST_TYPE

    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = component("predictor", bundle, tmp_path / "predictor.log")
    transformer = component(
        "transformer",
        [*bundle, "--predictor_host", predictor.grpc, "--predictor_protocol", "grpc-v2"],
        tmp_path / "transformer.log",
    )
    detector = start_detector(gbm_bundle, tmp_path / "detector.log")
    record = {"age": 60.0, "sex": "female", "bmi": 45.0, "bp": 140.0, "tc": 275.0}
    record |= {"ldl": 205.0, "hdl": 102.5, "tch": 10.25, "ltg": 5.0, "glu": 310.0}
    event = {
        "ce-specversion": "1.0",
        "ce-id": "k",
        "ce-type": REQUEST_TYPE,
        "ce-source": "http://localhost/",
        "ce-inferenceservicename": "diabetes-risk",
        "ce-namespace": "ml",
        "ce-component": "predictor",
        "content-type": "application/json",
    }
    try:
        with started_together([predictor, transformer]):
            assert transformer.process.proc is not None and detector.process.proc is not None
            seen = [
                _kill_9_under_load(
                    transformer.process.proc.pid,
                    f"{transformer.url}/v1/models/{MODEL}:predict",
                    json.dumps({"instances": [record]}).encode(),
                ),
                _kill_9_under_load(
                    detector.process.proc.pid, f"{detector.url}/", b'{"instances": [[1]]}', event
                ),
            ]
            assert transformer.process.proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        detector.process.stop()
    assert detector.process.proc is not None and detector.process.proc.returncode == -signal.SIGKILL
    for counts in seen:
        assert counts.get("200", 0) > 0 and counts.get(NEVER_ACCEPTED, 0) > 0, counts
        answered = {k for k in counts if k.removeprefix("after:").isdigit()}
        assert answered <= {"200", "after:200"}, counts
