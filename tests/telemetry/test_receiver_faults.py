"""A slow, failing or dead receiver never slows or fails inference; what it costs is counted.

No timing: the receiver here holds every POST for far longer than the clients' timeout, so a
logger on the request path would make the requests fail, not just slow down.
"""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import httpx
import pytest
from recording_receiver import REQUEST, recording
from telemetry_stack import ROWS, grpc_infer, logged_predictor, v2_body


def _logger_events(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("predictor_payload_logger_events_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
        if line.startswith("predictor_payload_logger_pending{"):
            out["pending"] = float(line.rsplit(" ", 1)[1])
    return out


def test_a_receiver_that_never_answers_costs_dropped_events_only(
    gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    blackhole = socket.socket()  # listens, never accepts, never answers
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    env = {"PREDICTOR_LOGGER_QUEUE_SIZE": "4", "PREDICTOR_LOGGER_TIMEOUT": "60"}
    try:
        with recording() as unused:
            unused.url = f"http://127.0.0.1:{blackhole.getsockname()[1]}/"
            with logged_predictor(gbm_bundle, unused, tmp_path_factory, env) as p:
                with httpx.Client(timeout=5.0) as client:  # far below the logger's 60 s
                    for i in range(30):
                        r = client.post(
                            p.server.infer_url, content=v2_body(ROWS), headers={"ce-id": f"bh-{i}"}
                        )
                        assert r.status_code == 200, r.text
                for i in range(5):
                    assert grpc_infer(p.server.grpc, ROWS, [("ce-id", f"bh-grpc-{i}")]).outputs
                counts = _logger_events(p.metrics())
    finally:
        blackhole.close()
    assert counts["sent"] == counts["failed"] == 0
    assert counts["pending"] == 4  # the queue's worth, held by the receiver that never answers
    assert counts["dropped"] == 2 * 35 - 4  # every other event, counted


def test_a_failing_receiver_counts_failures(
    gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with recording(status=500) as failing, logged_predictor(gbm_bundle, failing, tmp_path_factory, {}) as p:
        for i in range(5):
            assert p.infer(v2_body(ROWS), f"fail-{i}").status_code == 200
        p.recorder_wait(lambda: len(failing.posts) >= 10)
        p.recorder_wait(lambda: _logger_events(p.metrics()).get("failed", 0) >= 10)
        counts = _logger_events(p.metrics())
    assert len(failing.posts) == 10  # each event tried once, none sent twice
    assert counts["failed"] == 10 and counts["sent"] == counts["dropped"] == 0


def test_requests_answered_500_are_request_events_only(
    gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"PREDICTOR_FAULT_ERROR_RATE": "1.0"}  # every inference fails inside the predictor
    with recording() as rec:
        with logged_predictor(gbm_bundle, rec, tmp_path_factory, env) as p:
            assert p.infer(v2_body(ROWS), "fault-rest").status_code == 500
            with pytest.raises(grpc.RpcError) as failed:
                grpc_infer(p.server.grpc, ROWS, [("ce-id", "fault-grpc")])
            assert failed.value.code() == grpc.StatusCode.INTERNAL
        # stopped: the logger drained its queue before the process exited, so this is all of it
        events = [(e.id, e.type) for e in rec.events()]
    assert sorted(events) == [("fault-grpc", REQUEST), ("fault-rest", REQUEST)]
