"""A small stand-in predictor on real loopback sockets (V2 gRPC and V2 REST) for the tests that
need to see what the transformer sends (headers) or to make the predictor misbehave on purpose.

``mode``: ``ok`` (label 1, probabilities [0.25, 0.75] per row), ``reject`` (400 /
INVALID_ARGUMENT with :data:`REJECT_MESSAGE`), ``fail`` (500 / INTERNAL), ``unavailable``
(503 / UNAVAILABLE), ``slow`` (answers after ``delay`` seconds). Every request's headers (gRPC
metadata) are kept in ``seen``. Used by tests/transformer and tests/explainer.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from support import free_port

REJECT_MESSAGE = "fake predictor: input 'input' has 3 columns, expected 10"
FAIL_MESSAGE = "fake predictor: onnxruntime exploded"
UNAVAILABLE_MESSAGE = "fake predictor: model not ready"


class FakePredictor:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 5.0
        self.seen: list[dict[str, str]] = []
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None

    @property
    def grpc_host(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_host(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def _answer(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "slow":
            time.sleep(self.delay)
        labels = np.ones(rows, dtype=np.int64)
        probabilities = np.tile(np.array([0.25, 0.75], dtype=np.float32), (rows, 1))
        return labels, probabilities

    # --- gRPC ----------------------------------------------------------------------------

    def _servicer(self) -> pb_grpc.GRPCInferenceServiceServicer:
        fake = self

        class Servicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
            def ModelInfer(self, request: Any, context: Any) -> Any:
                fake.seen.append({k: v for k, v in context.invocation_metadata()})
                if fake.mode == "reject":
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, REJECT_MESSAGE)
                if fake.mode == "fail":
                    context.abort(grpc.StatusCode.INTERNAL, FAIL_MESSAGE)
                if fake.mode == "unavailable":
                    context.abort(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
                rows = int(request.inputs[0].shape[0])
                labels, probabilities = fake._answer(rows)
                return pb.ModelInferResponse(
                    model_name=request.model_name,
                    model_version="fake-1",
                    id=request.id,
                    outputs=[
                        pb.ModelInferResponse.InferOutputTensor(name="label", datatype="INT64", shape=[rows]),
                        pb.ModelInferResponse.InferOutputTensor(
                            name="probabilities", datatype="FP32", shape=[rows, 2]
                        ),
                    ],
                    raw_output_contents=[labels.tobytes(), probabilities.tobytes()],
                )

        return Servicer()

    # --- REST ----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                fake.seen.append({k.lower(): v for k, v in self.headers.items()})
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                if fake.mode == "reject":
                    return self._send(400, {"error": REJECT_MESSAGE})
                if fake.mode == "fail":
                    return self._send(500, {"error": FAIL_MESSAGE})
                if fake.mode == "unavailable":
                    return self._send(503, {"error": UNAVAILABLE_MESSAGE})
                rows = int(request["inputs"][0]["shape"][0])
                labels, probabilities = fake._answer(rows)
                self._send(
                    200,
                    {
                        "model_name": self.path.split("/")[3],
                        "model_version": "fake-1",
                        "id": request.get("id"),
                        "outputs": [
                            {"name": "label", "datatype": "INT64", "shape": [rows], "data": labels.tolist()},
                            {
                                "name": "probabilities",
                                "datatype": "FP32",
                                "shape": [rows, 2],
                                "data": probabilities.reshape(-1).tolist(),
                            },
                        ],
                    },
                )
                return None

        return Handler

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakePredictor:
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self._servicer(), self._grpc)
        self._grpc.add_insecure_port(self.grpc_host)
        self._grpc.start()
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), self._handler())
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(5)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
