"""Telemetry test helpers: a logged predictor, its events by ce-id, V2 bodies, gRPC calls with metadata."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from recording_receiver import REQUEST, RESPONSE, Event, Post, Recorder
from support import MODEL, PredictorProcess, predictor_process

ISVC, NAMESPACE = "risk-stable", "ml"
GO_HEADER_ORDER = [
    "Host",
    "User-Agent",
    "Content-Length",
    "Ce-Component",
    "Ce-Endpoint",
    "Ce-Id",
    "Ce-Inferenceservicename",
    "Ce-Metadata",
    "Ce-Namespace",
    "Ce-Recordedtime",
    "Ce-Source",
    "Ce-Specversion",
    "Ce-Time",
    "Ce-Type",
    "Content-Type",
]
"""Go's http.Header.Write order (sorted) after Host, User-Agent, Content-Length, as the agent sends."""
GO_RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")
"""``time.RFC3339Nano`` in UTC: up to 9 fraction digits, trailing zeros trimmed, ``Z``."""


@dataclass
class LoggedPredictor:
    server: PredictorProcess
    recorder: Recorder

    def events(self, ce_id: str, n: int, marker: str | None = None) -> list[Event]:
        """The events with ``ce_id`` once ``n`` have come (or, with ``marker``, once the two events
        of a later request with ce-id ``marker`` have come: the logger keeps order, so nothing
        with ``ce_id`` is still on its way)."""
        if marker is not None:
            self.recorder_wait(lambda: len(self._with(marker)) >= 2)
        else:
            self.recorder_wait(lambda: len(self._with(ce_id)) >= n)
        return self._with(ce_id)

    def posts(self, ce_id: str) -> list[Post]:
        return [p for p in list(self.recorder.posts) if p.headers.get("ce-id") == ce_id]

    def _with(self, ce_id: str) -> list[Event]:
        return [e for e in self.recorder.events() if e.id == ce_id]

    def recorder_wait(self, done: Any, timeout: float = 15.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)

    def infer(self, body: bytes, ce_id: str, **headers: str) -> httpx.Response:
        h = {"ce-id": ce_id, "content-type": "application/json", **headers}
        return httpx.post(self.server.infer_url, content=body, headers=h, timeout=30)

    def marker(self, ce_id: str) -> None:
        """A plain successful request (its two events mark everything before it as delivered)."""
        assert self.infer(v2_body(ROWS[:1]), ce_id).status_code == 200

    def metrics(self) -> str:
        return httpx.get(f"{self.server.http}/metrics", timeout=10).text


@contextlib.contextmanager
def logged_predictor(
    bundle: Path,
    recorder: Recorder,
    tmp: pytest.TempPathFactory,
    env: dict[str, str],
    extra: Sequence[str] = (),
) -> Iterator[LoggedPredictor]:
    args = ["--logger_url", recorder.url, "--inference_service", ISVC, "--namespace", NAMESPACE, *extra]
    p = predictor_process(bundle, tmp.mktemp("logged") / "predictor.log", env=env, extra=args)
    p.process.start()
    try:
        yield LoggedPredictor(p, recorder)
    finally:
        p.process.stop()


ROWS = np.array(
    [
        [59, 1, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87],
        [48, 0, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69],
        [72, 1, 30.5, 93, 156, 93.6, 41, 4, 4.6728, 85],
    ],
    dtype=np.float32,
)


def v2_body(rows: np.ndarray, request_id: str | None = None) -> bytes:
    """A V2 JSON request body, with the spacing a Python client writes (kept byte for byte)."""
    doc: dict[str, Any] = {
        "inputs": [
            {"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}
        ]
    }
    if request_id is not None:
        doc["id"] = request_id
    return json.dumps(doc).encode()


def v2_binary_body(rows: np.ndarray) -> tuple[bytes, int]:
    """A V2 binary-extension body (JSON header, then the raw FP32 rows) and its header length."""
    raw = np.ascontiguousarray(rows, dtype=np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return header + raw, len(header)


def go_time(value: str) -> datetime:
    assert GO_RFC3339_NANO.match(value), value
    seconds, _, rest = value[:-1].partition(".")
    return datetime.fromisoformat(seconds + "." + (rest or "0").ljust(6, "0")[:6] + "+00:00")


def grpc_infer(
    target: str,
    rows: np.ndarray,
    metadata: Sequence[tuple[str, str]],
    *,
    raw: bool = True,
    name: str = "input",
) -> Any:
    """``ModelInfer`` with KServe's generated stub (kserve, never tritonclient.grpc, in this process)."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype="FP32", shape=list(rows.shape))
    request = pb.ModelInferRequest(model_name=MODEL, id="grpc-request-id", inputs=[tensor])
    if raw:
        request.raw_input_contents.append(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
    else:
        request.inputs[0].contents.fp32_contents.extend(rows.ravel().tolist())
    with grpc.insecure_channel(target) as channel:
        return GRPCInferenceServiceStub(channel).ModelInfer(request, metadata=list(metadata), timeout=30)


def ort_outputs(bundle: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's own answer, in-process."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"input": x})
    return label, proba


def by_type(events: list[Event]) -> dict[str, Event]:
    out = {e.type: e for e in events}
    assert len(out) == len(events), f"duplicate event types: {[e.type for e in events]}"
    return out


__all__ = ["REQUEST", "RESPONSE", "by_type"]
