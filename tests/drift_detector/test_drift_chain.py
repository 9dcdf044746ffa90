"""End to end: predictor and transformer with ``--logger_url`` feed the real drift detector.

The detector loads the real (trained) gbm bundle; the predictor and transformer are the real
``python -m predictor`` / ``python -m transformer`` processes. Requests go through real clients
(tritonclient with the binary tensor extension, plain JSON), the components log them with the
local payload logger, and the verdicts are read back from ``/status`` and ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from drift_client import metrics, sample, wait_windows
from drift_receiver import receiving
from drift_server import start_detector
from serving_common import Bundle, FeatureSpec
from support import ServerProcess, free_port

MODEL = "diabetes-risk"
WINDOW = 50


@dataclass
class Server:
    url: str
    grpc: str
    process: ServerProcess


def start(module: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Server:
    http, grpc = free_port(), free_port()
    proc = ServerProcess(
        ["-m", module, "--model_name", MODEL, "--http_port", str(http), "--grpc_port", str(grpc), *args],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        env=env,
        log_path=log,
    )
    proc.start()
    return Server(f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}", proc)


@pytest.fixture(scope="module")
def gbm_detector(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = start_detector(
        gbm_bundle, tmp_path_factory.mktemp("drift-gbm") / "drift.log", {"DRIFT_WINDOW_SIZE": str(WINDOW)}
    )
    yield url
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="module")
def logged_predictor(
    gbm_bundle: Path, gbm_detector: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start(
        "predictor",
        [
            "--model_dir",
            str(gbm_bundle),
            "--logger_url",
            gbm_detector,
            "--inference_service",
            "predictor-e2e",
            "--namespace",
            "ml",
        ],
        tmp_path_factory.mktemp("predictor-logged") / "predictor.log",
    )
    yield server
    server.process.stop()


def shifted(
    rows: np.ndarray, spec: FeatureSpec, feature: str, sds: float, reference: np.ndarray
) -> np.ndarray:
    out = rows.copy()
    column = spec.names.index(feature)
    out[:, column] += sds * reference[:, column].std()
    return out


def test_predictor_with_logger_url_feeds_the_detector(
    gbm: Bundle, gbm_detector: str, logged_predictor: Server
) -> None:
    spec, reference = gbm.spec(), gbm.reference()
    client = triton.InferenceServerClient(logged_predictor.url.removeprefix("http://"))
    try:

        def infer(rows: np.ndarray, binary: bool) -> None:
            tensor = triton.InferInput("input", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows.astype(np.float32), binary_data=binary)
            result = client.infer(MODEL, [tensor])
            assert result.as_numpy("probabilities").shape == (len(rows), 2)

        for i in range(0, WINDOW, 10):  # in distribution: reference rows, binary and JSON tensors
            infer(reference[i : i + 10], binary=i % 20 == 0)
        for i in range(0, WINDOW, 10):  # BMI one standard deviation up
            infer(shifted(reference[100 + i : 110 + i], spec, "bmi", 1.0, reference), binary=i % 20 == 0)
    finally:
        client.close()

    with httpx.Client(timeout=10) as http:
        status = wait_windows(http, gbm_detector, "predictor-e2e", "features", 2)
        values = metrics(http, gbm_detector)
        predictor_metrics = http.get(f"{logged_predictor.url}/metrics").text
    assert status["namespace"] == "ml"
    assert status["windows_evaluated"]["features"] == 2 and status["windows_drifted"]["features"] == 1
    assert status["features"]["drift"] is True and "bmi" in status["features"]["drifted_features"]
    assert status["windows_evaluated"]["prediction"] == 2  # the responses' probabilities
    labels = {
        "inferenceservice": "predictor-e2e",
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    assert sample(values, "drift_events_received_total", **labels, type="request") == 10
    assert sample(values, "drift_events_received_total", **labels, type="response") == 10
    assert sample(values, "drift_events_joined_total", **labels) == 10
    assert sample(values, "drift_detected", **labels, kind="features") == 1
    assert sample(values, "drift_feature_drifted", **labels, feature="bmi") == 1
    assert sample(values, "drift_events_rejected_total", reason="not_json") == 0
    assert (
        'predictor_payload_logger_events_total{model_name="diabetes-risk",outcome="sent"} 20.0'
        in predictor_metrics
    )


def test_stable_and_canary_predictors_are_judged_apart(
    gbm: Bundle, gbm_bundle: Path, gbm_detector: str, logged_predictor: Server, tmp_path: Path
) -> None:
    """Two real loggers, one detector: the canary's shifted traffic drifts, the stable's does not."""
    spec, reference = gbm.spec(), gbm.reference()
    canary = start(
        "predictor",
        [
            "--model_dir",
            str(gbm_bundle),
            "--logger_url",
            gbm_detector,
            "--inference_service",
            "predictor-e2e-canary",
            "--namespace",
            "ml",
        ],
        tmp_path / "canary.log",
    )
    try:
        with httpx.Client(timeout=30) as http:
            for i in range(0, WINDOW, 10):
                stable_rows = reference[200 + i : 210 + i]
                canary_rows = shifted(reference[50 + i : 60 + i], spec, "age", 1.0, reference)
                for server, rows in ((logged_predictor, stable_rows), (canary, canary_rows)):
                    r = http.post(
                        f"{server.url}/v1/models/{MODEL}:predict", json={"instances": rows.tolist()}
                    )
                    assert r.status_code == 200, r.text
            stable = wait_windows(http, gbm_detector, "predictor-e2e", "features", 3)
            canary_status = wait_windows(http, gbm_detector, "predictor-e2e-canary", "features", 1)
            values = metrics(http, gbm_detector)
    finally:
        canary.process.stop()
    assert stable["features"]["window"] == 3 and stable["features"]["drift"] is False, stable["features"]
    assert canary_status["features"]["drift"] is True
    assert "age" in canary_status["features"]["drifted_features"]
    assert sample(values, "drift_detected", inferenceservice="predictor-e2e", kind="features") == 0
    assert sample(values, "drift_detected", inferenceservice="predictor-e2e-canary", kind="features") == 1


def test_transformer_with_logger_url_feeds_the_detector(
    gbm: Bundle, gbm_bundle: Path, gbm_detector: str, logged_predictor: Server, tmp_path: Path
) -> None:
    spec, reference = gbm.spec(), gbm.reference()
    transformer = start(
        "transformer",
        [
            "--model_dir",
            str(gbm_bundle),
            "--predictor_host",
            logged_predictor.url.removeprefix("http://"),
            "--predictor_protocol",
            "v2",
            "--logger_url",
            gbm_detector,
            "--inference_service",
            "transformer-e2e",
            "--namespace",
            "ml",
        ],
        tmp_path / "transformer.log",
    )
    try:
        with httpx.Client(timeout=30) as http:
            for i in range(0, WINDOW, 10):
                records = [spec.decode_row(row) for row in reference[150 + i : 160 + i].tolist()]
                r = http.post(f"{transformer.url}/v1/models/{MODEL}:predict", json={"instances": records})
                assert r.status_code == 200, r.text
            status = wait_windows(
                http, gbm_detector, "transformer-e2e", "features", 1, component="transformer"
            )
    finally:
        transformer.process.stop()
    assert status["windows_evaluated"] == {"features": 1, "prediction": 1}
    assert status["features"]["drift"] is False, status["features"]
    assert status["rows_seen"] == {"features": WINDOW, "prediction": WINDOW}


def test_transformer_over_grpc_v2_to_a_logged_predictor_feeds_the_detector(
    gbm: Bundle, gbm_bundle: Path, gbm_detector: str, tmp_path: Path
) -> None:
    """The chart's grpc-v2 wiring: the transformer calls the predictor over gRPC, the predictor's
    own ``--logger_url`` logs each exchange as the V2 JSON the REST path would carry (C3)."""
    spec, reference = gbm.spec(), gbm.reference()
    predictor = start(
        "predictor",
        [
            "--model_dir",
            str(gbm_bundle),
            "--logger_url",
            gbm_detector,
            "--inference_service",
            "grpc-e2e",
            "--namespace",
            "ml",
        ],
        tmp_path / "predictor.log",
    )
    transformer = start(
        "transformer",
        [
            "--model_dir",
            str(gbm_bundle),
            "--predictor_host",
            predictor.grpc,
            "--predictor_protocol",
            "grpc-v2",
        ],
        tmp_path / "transformer.log",
    )
    try:
        with httpx.Client(timeout=30) as http:
            for i in range(0, WINDOW, 10):
                rows = shifted(reference[i : i + 10], spec, "glu", 1.5, reference)
                records = [spec.decode_row(row) for row in rows.tolist()]
                r = http.post(f"{transformer.url}/v1/models/{MODEL}:predict", json={"instances": records})
                assert r.status_code == 200, r.text
            status = wait_windows(http, gbm_detector, "grpc-e2e", "features", 1, timeout=15)
            values = metrics(http, gbm_detector)
    finally:
        transformer.process.stop()
        predictor.process.stop()
    assert status["rows_seen"] == {"features": WINDOW, "prediction": WINDOW}
    assert status["features"]["drift"] is True and "glu" in status["features"]["drifted_features"]
    labels = {
        "inferenceservice": "grpc-e2e",
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    assert sample(values, "drift_events_joined_total", **labels) == WINDOW // 10


def test_a_slow_or_dead_detector_never_slows_or_fails_inference(gbm_bundle: Path, tmp_path: Path) -> None:
    rows = Bundle.open(gbm_bundle).reference()[:5].tolist()
    with receiving(delay=2.0) as slow:
        predictor = start(
            "predictor",
            ["--model_dir", str(gbm_bundle), "--logger_url", slow.url],
            tmp_path / "predictor.log",
            env={"PREDICTOR_LOGGER_QUEUE_SIZE": "2", "PREDICTOR_LOGGER_TIMEOUT": "0.5"},
        )
        try:
            with httpx.Client(timeout=10) as http:
                url = f"{predictor.url}/v1/models/{MODEL}:predict"
                http.post(url, json={"instances": rows})  # warm
                for _ in range(20):
                    r = http.post(url, json={"instances": rows})
                    assert r.status_code == 200, r.text
                text = http.get(f"{predictor.url}/metrics").text
        finally:
            predictor.process.stop(timeout=30)
    # the receiver takes 2 s per event and the logger holds 2: had logging waited for room, nothing
    # would have been dropped (no timed assertion: the drop count is the proof)
    dropped = [line for line in text.splitlines() if 'outcome="dropped"' in line]
    assert dropped and float(dropped[0].split()[-1]) >= 30, dropped
