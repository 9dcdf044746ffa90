"""The bench harness itself: wrk sends the exact body, and no error answer goes uncounted."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import loadgen
import numpy as np
import pytest
from support import free_port

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)"
)

# Nested JSON arrays end in "]]": the body that once ended wrk's Lua long string early.
BODY = b'{"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [[1.5, 2], [3, 4]]]}'


class Sink:
    """A loopback HTTP/1.1 server answering every POST with ``status`` and keeping the bodies."""

    def __init__(self, status: int) -> None:
        self.bodies: list[bytes] = []
        self.methods: set[str] = set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                sink.methods.add(self.command)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2/models/m/infer"


@pytest.fixture
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    s = Sink(request.param)
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()
    s.thread.join(timeout=10)


@needs_wrk
@pytest.mark.parametrize("sink", [200], indirect=True)
def test_wrk_posts_the_exact_body_and_counts_every_200(sink: Sink, tmp_path: Path) -> None:
    run = loadgen.wrk(sink.url, BODY, concurrency=2, seconds=1, workdir=tmp_path)
    assert run.failure() is None
    assert run.requests > 0
    assert run.statuses == {"200": run.requests}
    assert sink.methods == {"POST"}
    assert set(sink.bodies) == {BODY}
    assert len(sink.bodies) >= run.requests


@needs_wrk
@pytest.mark.parametrize("sink", [503], indirect=True)
def test_wrk_run_of_error_answers_is_a_failure(sink: Sink, tmp_path: Path) -> None:
    run = loadgen.wrk(sink.url, BODY, concurrency=1, seconds=1, workdir=tmp_path)
    assert run.statuses == {"503": run.requests}
    assert run.failure() == f"{run.requests} error responses (503 x{run.requests})"


@needs_wrk
def test_wrk_against_a_closed_port_raises_instead_of_measuring(tmp_path: Path) -> None:
    with pytest.raises(
        loadgen.WrkError, match=r"without one result line: unable to connect.*Connection refused"
    ):
        loadgen.wrk(f"http://127.0.0.1:{free_port()}/", BODY, concurrency=1, seconds=1, workdir=tmp_path)


def test_socket_errors_and_empty_runs_are_failures() -> None:
    run = loadgen.Run(
        requests=0, seconds=1.0, p50_ms=0.0, p99_ms=0.0, statuses={}, socket_errors={"read": 3, "timeout": 0}
    )
    assert run.failure() == "socket errors (read x3); no request answered"


def test_one_grpc_error_among_many_ok_fails_the_run() -> None:
    run = loadgen.Run(
        requests=1001, seconds=1.0, p50_ms=1.0, p99_ms=2.0, statuses={"OK": 1000, "UNAVAILABLE": 1}
    )
    assert run.failure() == "1 error responses (UNAVAILABLE x1)"
    assert loadgen.Run.from_json(run.to_json()) == run


def test_cpu_is_charged_per_answered_request() -> None:
    run = loadgen.Run(requests=500, seconds=1.0, p50_ms=1.0, p99_ms=2.0, statuses={"200": 500})
    run.charge({"predictor": 0.25, "transformer": 1.0})
    assert run.cpu_us == {"predictor": 500.0, "transformer": 2000.0}


def test_sanity_check_accepts_1e5_and_names_a_larger_difference() -> None:
    want = np.array([[0.25, 0.75]], dtype=np.float32)
    loadgen.check_close("probabilities", want + 5e-6, want)
    with pytest.raises(loadgen.SanityError, match=r"probabilities: differs from onnxruntime by up to 0\.001"):
        loadgen.check_close("probabilities", want + 1e-3, want)
    with pytest.raises(loadgen.SanityError, match=r"label: \['low'\] != onnxruntime \['high'\]"):
        loadgen.check_close("label", ["low"], ["high"])
    with pytest.raises(loadgen.SanityError, match=r"shape \(1,\), onnxruntime \(1, 2\)"):
        loadgen.check_close("probabilities", [0.5], want)


def test_json_rows_parse_back_to_the_same_float32_values() -> None:
    import json

    x = loadgen.sample_rows(8)
    assert x.dtype == np.float32
    assert np.array_equal(np.asarray(json.loads(json.dumps(loadgen.json_rows(x))), dtype=np.float32), x)


ALTERNATING_LUA = r"""
-- Bodies from the files named after `--`, in turn (as the drift bench alternates request/response events).
local bodies, n = {}, 0
function init(args)
  for i, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    bodies[i] = f:read("*a")
    f:close()
  end
end
function request()
  n = n + 1
  return wrk.format("POST", nil, {["ce-id"] = "bench-" .. n}, bodies[(n % #bodies) + 1])
end
"""


@needs_wrk
@pytest.mark.parametrize("sink", [200], indirect=True)
def test_a_script_of_ones_own_is_counted_the_same_way(sink: Sink, tmp_path: Path) -> None:
    other = b'{"outputs": [{"name": "p", "data": [[0.5]]}]}'
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    files[0].write_bytes(BODY)
    files[1].write_bytes(other)
    run = loadgen.wrk_script(
        sink.url, ALTERNATING_LUA, [str(f) for f in files], concurrency=1, seconds=1, workdir=tmp_path
    )
    assert run.failure() is None
    assert run.statuses == {"200": run.requests}
    assert set(sink.bodies) == {BODY, other}
