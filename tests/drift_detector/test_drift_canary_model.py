"""Issue 12, end to end: a canary running another model gets no prediction-drift verdict.

One real detector loads the stable (gbm) bundle; two real predictors, of ``.bundles/gbm``-like and
``.bundles/mlp``-like bundles (trained once per session), log to it with ``--logger_url``. Both are
sent the same undrifted rows. The stable stream's prediction drift is judged against the gbm
reference scores as before; the canary's responses carry ``model_version`` mlp-N, so its scores are
not compared with gbm's reference (that fired ``ModelDriftDetected{kind="prediction"}`` forever):
they are counted as skipped and ``/status`` says why, while its feature drift is judged as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from drift_client import metrics, sample, wait_windows
from drift_server import start_detector
from serving_common import Bundle
from support import ServerProcess, free_port

MODEL = "diabetes-risk"
WINDOW = 50
BATCH = 10


@pytest.fixture(scope="module")
def detector(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = start_detector(
        gbm_bundle, tmp_path_factory.mktemp("drift-mv") / "drift.log", {"DRIFT_WINDOW_SIZE": str(WINDOW)}
    )
    yield url
    assert proc.stop() == 0, proc.output()


def start(module: str, args: list[str], log: Path) -> tuple[str, ServerProcess]:
    http, grpc = free_port(), free_port()
    proc = ServerProcess(
        ["-m", module, "--model_name", MODEL, "--http_port", str(http), "--grpc_port", str(grpc), *args],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        log_path=log,
    )
    proc.start()
    return f"http://127.0.0.1:{http}", proc


def logged(bundle: Path, detector: str, isvc: str) -> list[str]:
    return [
        "--model_dir",
        str(bundle),
        "--logger_url",
        detector,
        "--inference_service",
        isvc,
        "--namespace",
        "ml",
    ]


def v2(rows: np.ndarray) -> dict[str, Any]:
    tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}
    return {"inputs": [tensor]}


def test_the_canary_model_is_not_judged_against_the_stable_models_reference_scores(
    gbm: Bundle, gbm_bundle: Path, mlp_bundle: Path, detector: str, tmp_path: Path
) -> None:
    """Stable: 100 rows to the gbm predictor (V2). Canary: 50 rows to the mlp predictor (V2) and 50
    raw records through a transformer (V1, component transformer) in front of it: 100 rows reach the
    canary predictor's stream, 50 the transformer's. The same undrifted reference rows everywhere."""
    stable_version, canary_version = gbm.version, Bundle.open(mlp_bundle).version
    assert stable_version and canary_version and stable_version != canary_version
    spec, reference = gbm.spec(), gbm.reference()
    procs: list[ServerProcess] = []
    try:
        stable_url, proc = start("predictor", logged(gbm_bundle, detector, "mv-stable"), tmp_path / "s.log")
        procs.append(proc)
        canary_url, proc = start("predictor", logged(mlp_bundle, detector, "mv-canary"), tmp_path / "c.log")
        procs.append(proc)
        transformer_args = [
            *logged(mlp_bundle, detector, "mv-canary"),
            *("--predictor_host", canary_url.removeprefix("http://"), "--predictor_protocol", "v2"),
        ]
        transformer_url, proc = start("transformer", transformer_args, tmp_path / "t.log")
        procs.append(proc)
        with httpx.Client(timeout=30) as http:
            for i in range(0, 2 * WINDOW, BATCH):
                rows = reference[i : i + BATCH]
                r = http.post(f"{stable_url}/v2/models/{MODEL}/infer", json=v2(rows))
                assert r.status_code == 200, r.text
                if i < WINDOW:
                    r = http.post(f"{canary_url}/v2/models/{MODEL}/infer", json=v2(rows))
                else:
                    records = [spec.decode_row(row) for row in rows.tolist()]
                    r = http.post(f"{transformer_url}/v1/models/{MODEL}:predict", json={"instances": records})
                    assert r.json()["model_version"] == canary_version, r.text
                assert r.status_code == 200, r.text
            stable_status = wait_windows(http, detector, "mv-stable", "prediction", 2)
            canary_status = wait_windows(http, detector, "mv-canary", "features", 2)
            via_transformer = wait_windows(
                http, detector, "mv-canary", "features", 1, component="transformer"
            )
            values = metrics(http, detector)
    finally:
        for proc in reversed(procs):
            proc.stop()

    assert stable_status["windows_evaluated"] == {"features": 2, "prediction": 2}
    assert stable_status["windows_drifted"] == {"features": 0, "prediction": 0}, stable_status
    assert stable_status["prediction"]["drift"] is False
    assert stable_status["model_version"] == stable_version
    assert stable_status["prediction_drift"] == f"judged against reference {stable_version}"

    assert canary_status["windows_evaluated"] == {"features": 2, "prediction": 0}
    assert canary_status["windows_drifted"]["features"] == 0, canary_status["features"]
    assert canary_status["rows_seen"] == {"features": 2 * WINDOW, "prediction": 0}
    assert canary_status["prediction"] is None
    assert canary_status["model_version"] == canary_version
    assert canary_status["prediction_drift"] == (
        f"not applicable: model_version {canary_version}, reference {stable_version}"
    )
    assert canary_status["prediction_rows_skipped_model_version"] == 2 * WINDOW

    canary_labels = {
        "inferenceservice": "mv-canary",
        "inferenceservice_namespace": "ml",
        "inferenceservice_component": "predictor",
    }
    stable_labels = {**canary_labels, "inferenceservice": "mv-stable"}
    skipped = {"kind": "prediction", "reason": "model_version"}
    assert sample(values, "drift_rows_skipped_total", **canary_labels, **skipped) == 2 * WINDOW
    assert sample(values, "drift_rows_skipped_total", **stable_labels, **skipped) == 0
    assert sample(values, "drift_events_received_total", **canary_labels, type="response") == 10
    assert sample(values, "drift_detected", **stable_labels, kind="prediction") == 0
    transformer = via_transformer
    assert transformer["windows_evaluated"] == {"features": 1, "prediction": 0}
    assert transformer["features"]["drift"] is False and transformer["prediction"] is None
    assert transformer["prediction_rows_skipped_model_version"] == WINDOW
    assert transformer["prediction_drift"].startswith(f"not applicable: model_version {canary_version}")
    # what `rollout run`'s default --drift-query, max(drift_detected{inferenceservice="mv-canary"}), sees
    canary_detected = {
        (ls, v)
        for (n, ls), v in values.items()
        if n == "drift_detected" and ("inferenceservice", "mv-canary") in ls
    }
    assert canary_detected == {
        (frozenset({**canary_labels, "kind": "features"}.items()), 0.0),
        (
            frozenset(
                {**canary_labels, "inferenceservice_component": "transformer", "kind": "features"}.items()
            ),
            0.0,
        ),
    }
