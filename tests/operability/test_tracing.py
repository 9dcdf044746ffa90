"""Issue 16 (4): transformer -> predictor as one W3C trace, exported over OTLP/HTTP when
``*_OTLP_ENDPOINT`` is set (to a real HTTP receiver here), the client's trace continued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support import ServerProcess, free_port

MODEL = "diabetes-risk"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Collector:
    """An OTLP/HTTP endpoint: ``POST /v1/traces`` (protobuf), spans kept as dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with collector.lock:
                    for resource in request.resource_spans:
                        service = next(
                            a.value.string_value
                            for a in resource.resource.attributes
                            if a.key == "service.name"
                        )
                        for scope in resource.scope_spans:
                            for span in scope.spans:
                                collector.spans.append(
                                    {
                                        "service": service,
                                        "name": span.name,
                                        "trace_id": span.trace_id.hex(),
                                        "span_id": span.span_id.hex(),
                                        "parent": span.parent_span_id.hex(),
                                    }
                                )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    found = Collector()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), found.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
def test_transformer_and_predictor_spans_form_one_trace(
    collector: tuple[Collector, str], gbm_bundle: Path, tmp_path: Path, protocol: str
) -> None:
    found, endpoint = collector
    p_http, p_grpc, t_http, t_grpc = free_port(), free_port(), free_port(), free_port()
    hop = p_http if protocol == "v2" else p_grpc
    predictor = ServerProcess(
        ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--http_port", str(p_http), "--grpc_port", str(p_grpc)],
        ready_url=f"http://127.0.0.1:{p_http}/v2/models/{MODEL}/ready",
        env={"PREDICTOR_OTLP_ENDPOINT": endpoint}, log_path=tmp_path / "predictor.log",
    )  # fmt: skip
    transformer = ServerProcess(
        ["-m", "transformer", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--predictor_host", f"127.0.0.1:{hop}", "--predictor_protocol", protocol,
         "--http_port", str(t_http), "--grpc_port", str(t_grpc)],
        ready_url=f"http://127.0.0.1:{t_http}/v2/models/{MODEL}/ready",
        env={"TRANSFORMER_OTLP_ENDPOINT": endpoint}, log_path=tmp_path / "transformer.log",
    )  # fmt: skip
    record = {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
              "ltg": 4.8598, "glu": 87}  # fmt: skip
    with predictor, transformer:
        traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
        r = httpx.post(
            f"http://127.0.0.1:{t_http}/v1/models/{MODEL}:predict",
            json={"instances": [record]},
            headers={"traceparent": traceparent},
            timeout=20,
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with found.lock:
                mine = [s for s in found.spans if s["trace_id"] == CLIENT_TRACE]
            if {s["service"] for s in mine} == {"transformer", "predictor"}:
                break
            time.sleep(0.2)
    by_service = {s["service"]: s for s in mine}
    assert set(by_service) == {"transformer", "predictor"}, found.spans
    assert by_service["transformer"]["parent"] == CLIENT_SPAN  # the client's trace, continued
    assert by_service["predictor"]["parent"] == by_service["transformer"]["span_id"]  # the hop
    expected = f"POST /v2/models/{MODEL}/infer" if protocol == "v2" else "ModelInfer"
    assert by_service["predictor"]["name"] == expected


def test_explainer_calls_are_children_of_the_explain_span(
    collector: tuple[Collector, str], gbm_bundle: Path, tmp_path: Path
) -> None:
    found, endpoint = collector
    p_http, p_grpc, e_http, e_grpc = free_port(), free_port(), free_port(), free_port()
    predictor = ServerProcess(
        ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--http_port", str(p_http), "--grpc_port", str(p_grpc)],
        ready_url=f"http://127.0.0.1:{p_http}/v2/models/{MODEL}/ready",
        env={"PREDICTOR_OTLP_ENDPOINT": endpoint}, log_path=tmp_path / "predictor.log",
    )  # fmt: skip
    explainer = ServerProcess(
        ["-m", "explainer", "--model_name", MODEL, "--model_dir", str(gbm_bundle),
         "--predictor_host", f"127.0.0.1:{p_http}", "--predictor_protocol", "v2",
         "--http_port", str(e_http), "--grpc_port", str(e_grpc)],
        ready_url=f"http://127.0.0.1:{e_http}/v2/models/{MODEL}/ready",
        env={"EXPLAINER_OTLP_ENDPOINT": endpoint}, log_path=tmp_path / "explainer.log",
    )  # fmt: skip
    record = {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
              "ltg": 4.8598, "glu": 87}  # fmt: skip
    with predictor, explainer:
        r = httpx.post(
            f"http://127.0.0.1:{e_http}/v1/models/{MODEL}:explain",
            json={"instances": [record]},
            headers={"x-request-id": "req-explain-1"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with found.lock:
                explain = [s for s in found.spans if s["service"] == "explainer"]
                calls = [s for s in found.spans if s["service"] == "predictor"]
            if explain and calls:
                break
            time.sleep(0.2)
    assert len(explain) == 1 and explain[0]["name"] == f"POST /v1/models/{MODEL}:explain", found.spans
    assert calls and all(c["trace_id"] == explain[0]["trace_id"] for c in calls)
    assert all(c["parent"] == explain[0]["span_id"] for c in calls)  # each predictor call: a child
