"""Integrity refusal, metrics after traffic, and the payload logger of a real predictor process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from predictor_stack import MODEL, Predictor, start_predictor, triton_grpc
from support import REPO, free_port


def _run_predictor(model_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m predictor`` to its exit (for bundles it must refuse)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "predictor",
            "--model_name",
            MODEL,
            "--model_dir",
            str(model_dir),
            "--http_port",
            str(free_port()),
            "--grpc_port",
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tampered_model_is_refused(gbm_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(gbm_bundle, bundle)
    with (bundle / "model.onnx").open("ab") as fh:
        fh.write(b"\x00")
    done = _run_predictor(bundle)
    assert done.returncode == 4  # EXIT_INTEGRITY (serving_common.operability.exits)
    assert ": model.onnx has sha256" in done.stderr
    card = json.loads((bundle / "model_card.json").read_text())
    assert f"but the model card expects {card['artifacts']['model.onnx']['sha256']}" in done.stderr


def test_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    done = _run_predictor(tmp_path / "nope")
    assert done.returncode == 3  # EXIT_BUNDLE
    assert "is neither a directory nor an .onnx file" in done.stderr


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in /metrics")


def test_metrics_after_traffic(predictor: Predictor, tmp_path: Path) -> None:
    before = httpx.get(f"{predictor.http}/metrics").text
    labels = {"model_name": MODEL, "protocol": "rest_v2", "code": "200", "caller": "client"}
    ok_before = _metric(before, "predictor_requests_total", **labels) if 'code="200"' in before else 0.0
    row = [[59, 1, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]] * 4
    for _ in range(5):
        r = httpx.post(
            predictor.infer_url,
            json={"inputs": [{"name": "input", "datatype": "FP32", "shape": [4, 10], "data": row}]},
        )
        assert r.status_code == 200
    for _ in range(2):
        r = httpx.post(
            predictor.infer_url,
            json={"inputs": [{"name": "input", "datatype": "FP64", "shape": [4, 10], "data": row}]},
        )
        assert r.status_code == 400
    triton_grpc(predictor, tmp_path / "ok", np.zeros((2, 10), np.float32))
    triton_grpc(predictor, tmp_path / "bad", np.zeros((2, 9), np.float32))
    text = httpx.get(f"{predictor.http}/metrics").text
    assert _metric(text, "predictor_requests_total", **labels) - ok_before == 5
    assert _metric(text, "predictor_requests_total", protocol="rest_v2", code="400") >= 2
    assert _metric(text, "predictor_requests_total", protocol="grpc_v2", code="OK") >= 1
    assert _metric(text, "predictor_requests_total", protocol="grpc_v2", code="INVALID_ARGUMENT") >= 1
    assert _metric(text, "predictor_request_duration_seconds_count", protocol="rest_v2") >= 7
    assert _metric(text, "predictor_rows_per_request_bucket", model_name=MODEL, le="4.0") >= 5
    assert _metric(text, "predictor_inference_duration_seconds_count", model_name=MODEL) >= 6
    # KServe's own histograms are still there
    assert _metric(text, "request_predict_seconds_count", model_name=MODEL) >= 6


class _Sink(BaseHTTPRequestHandler):
    events: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).events.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    _Sink.events = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Sink.events
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_payload_logger_sends_kserve_cloudevents(gbm_bundle: Path, tmp_path: Path, sink: tuple) -> None:
    url, events = sink
    p = start_predictor(
        gbm_bundle,
        tmp_path / "p.log",
        extra=["--logger_url", url, "--inference_service", "risk-stable", "--namespace", "ml"],
    )
    try:
        body = {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [1, 10],
                    "data": [59, 1, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87],
                }
            ]
        }
        r = httpx.post(p.infer_url, json=body, headers={"ce-id": "evt-1"})
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = httpx.get(f"{p.http}/metrics").text
    finally:
        p.process.stop()
    assert len(events) == 2
    by_type = {h["ce-type"]: (h, b) for h, b in events}
    req_h, req_b = by_type["org.kubeflow.serving.inference.request"]
    resp_h, resp_b = by_type["org.kubeflow.serving.inference.response"]
    assert req_h["ce-id"] == resp_h["ce-id"] == "evt-1"
    assert req_h["ce-inferenceservicename"] == "risk-stable" and req_h["ce-namespace"] == "ml"
    assert req_h["ce-component"] == "predictor" and req_h["ce-specversion"] == "1.0"
    assert json.loads(req_b) == body
    assert json.loads(resp_b)["outputs"][0]["name"] == "label"
    assert 'predictor_payload_logger_events_total{model_name="diabetes-risk",outcome="sent"} 2.0' in metrics
