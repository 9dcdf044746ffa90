"""The InferenceService engine against a real predictor process (V2 REST and gRPC), retries included."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from batch_files import batch, columns, read, write
from support import MODEL, PredictorProcess, free_port, predictor_process

MAX_ROWS = 512


@pytest.fixture(scope="module")
def predictor(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PredictorProcess]:
    p = predictor_process(
        gbm_bundle,
        tmp_path_factory.mktemp("predictor") / "predictor.log",
        env={"PREDICTOR_MAX_ROWS": str(MAX_ROWS)},
    )
    p.process.start()
    yield p
    assert p.process.stop() is not None


@pytest.fixture(scope="module")
def records_file(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cols = columns(gbm_bundle, 5_000)
    cols["bmi"][17] = 5.0
    return write(tmp_path_factory.mktemp("records") / "records.csv", cols)


@pytest.fixture(scope="module")
def in_process(gbm_bundle: Path, records_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("in-process") / "scores.csv"
    done = batch("--model_dir", gbm_bundle, "--input", records_file, "--output", out, "--id-column", "pid")
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize(("engine", "address"), [("v2-rest", "http"), ("v2-grpc", "grpc")])
def test_the_predictor_engines_score_exactly_as_in_process(
    gbm_bundle: Path,
    predictor: PredictorProcess,
    records_file: Path,
    in_process: Path,
    tmp_path: Path,
    engine: str,
    address: str,
) -> None:
    host = predictor.http.removeprefix("http://") if address == "http" else predictor.grpc
    out = tmp_path / "scores.csv"
    done = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        records_file,
        "--output",
        out,
        "--id-column",
        "pid",
        "--engine",
        engine,
        "--predictor-host",
        host,
        "--model-name",
        MODEL,
        "--batch-rows",
        str(MAX_ROWS),
        "--concurrency",
        "4",
        "--chunk-rows",
        "2000",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["scored"], summary["rejected"], summary["model_version"]) == (4_999, 1, "gbm-1")
    assert read(out).equals(read(in_process))
    assert read(tmp_path / "scores.rejects.csv").column("row").to_pylist() == [17]


class _Flaky(BaseHTTPRequestHandler):
    """Answers the first ``failures`` inference POSTs 503 (then 504), forwards the rest to the predictor."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    failures = 0
    seen: list[int] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.lock:
            n = len(self.seen)
            status = (503 if n % 2 == 0 else 504) if n < self.failures else 0
            if not status:
                answer = httpx.post(
                    self.upstream + self.path,
                    content=body,
                    headers={"content-type": "application/json"},
                    timeout=30,
                )
                status, content = answer.status_code, answer.content
            else:
                content = json.dumps({"error": "not now"}).encode()
            self.seen.append(status)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: object) -> None:
        pass


def test_503_and_504_answers_are_retried_with_backoff_and_no_row_is_lost(
    gbm_bundle: Path, predictor: PredictorProcess, records_file: Path, in_process: Path, tmp_path: Path
) -> None:
    handler = type("Flaky", (_Flaky,), {"upstream": predictor.http, "failures": 4, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = tmp_path / "scores.csv"
        done = batch(
            "--model_dir",
            gbm_bundle,
            "--input",
            records_file,
            "--output",
            out,
            "--id-column",
            "pid",
            "--engine",
            "v2-rest",
            "--predictor-host",
            f"127.0.0.1:{server.server_port}",
            "--model-name",
            MODEL,
            "--batch-rows",
            "500",
            "--concurrency",
            "1",
            env={"PREDICTOR_BATCH_BACKOFF_SECONDS": "0.01", "PREDICTOR_BATCH_RETRIES": "5"},
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert handler.seen[:4] == [503, 504, 503, 504]
    assert handler.seen[4:] == [200] * (len(handler.seen) - 4)
    assert len(handler.seen) == 4 + 1 + 10  # retries, the probe, ceil(4999 / 500) batches
    assert done.stderr.count("retrying in") == 4
    assert read(out).equals(read(in_process))


def test_a_predictor_that_stays_unreachable_fails_the_job_with_exit_6(
    gbm_bundle: Path, records_file: Path, tmp_path: Path
) -> None:
    done = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        records_file,
        "--output",
        tmp_path / "o.csv",
        "--engine",
        "v2-grpc",
        "--predictor-host",
        f"127.0.0.1:{free_port()}",
        "--model-name",
        MODEL,
        env={"PREDICTOR_BATCH_BACKOFF_SECONDS": "0.01", "PREDICTOR_BATCH_RETRIES": "2"},
    )
    assert done.returncode == 6
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "is unavailable" in errors[0] and "(after 2 retries)" in errors[0]


def test_batches_above_the_predictors_row_limit_fail_with_advice(
    gbm_bundle: Path, predictor: PredictorProcess, records_file: Path, tmp_path: Path
) -> None:
    done = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        records_file,
        "--output",
        tmp_path / "o.csv",
        "--engine",
        "v2-rest",
        "--predictor-host",
        predictor.http,
        "--model-name",
        MODEL,
        "--batch-rows",
        str(MAX_ROWS + 1),
    )
    assert done.returncode == 6
    assert "lower --batch-rows to the predictor's PREDICTOR_MAX_ROWS" in done.stderr
