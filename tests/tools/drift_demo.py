"""Drift demo: normal, then shifted traffic through a real predictor; the detector's verdicts.

Starts the drift detector (``.venv-drift``) on the stable bundle and the predictor with
``--logger_url`` pointing at it, sends the held-out test patients (in distribution), then the
same patients with BMI one standard deviation higher, and prints each window's verdict.
Run from the repo root: ``.venv/bin/python tests/tools/drift_demo.py --bundles .bundles``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serving_common import Bundle
from support import VENV_DRIFT_PYTHON, ServerProcess, free_port

MODEL = "diabetes-risk"
ISVC = "diabetes-risk-stable"


def verdicts(http: httpx.Client, base: str, windows: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"{base}/status").json()
        for stream in status.get("streams", []):
            evaluated = stream["windows_evaluated"]
            if stream["inferenceservice"] == ISVC and min(evaluated.values()) >= windows:
                return stream  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise RuntimeError(f"no verdict for window {windows} after {timeout}s")


def show(label: str, stream: dict[str, object]) -> None:
    features = stream["features"]
    prediction = stream["prediction"]
    assert isinstance(features, dict) and isinstance(prediction, dict)
    worst = sorted(features["p_values"].items(), key=lambda kv: kv[1])[:3]
    print(
        f"{label:<28} window {features['window']:>2}: features {'DRIFT' if features['drift'] else 'ok':<5} "
        f"(threshold {features['threshold']:.4f}; lowest p: "
        + ", ".join(f"{k}={v:.2g}" for k, v in worst)
        + f")  prediction {'DRIFT' if prediction['drift'] else 'ok':<5} "
        f"(p={prediction['p_values']['prediction']:.2g})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundles", type=Path, default=Path(".bundles"))
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args()
    from training import data

    bundle = Bundle.open(args.bundles / "gbm")
    spec, reference = bundle.spec(), bundle.reference()
    normal = spec.vectorise(data.load(seed=7).test_records)
    shifted = normal.copy()
    bmi = spec.names.index("bmi")
    shifted[:, bmi] += reference[:, bmi].std()
    rows = (len(normal) // args.window) * args.window

    with tempfile.TemporaryDirectory() as tmp:
        drift_port, http_port, grpc_port = free_port(), free_port(), free_port()
        drift = f"http://127.0.0.1:{drift_port}"
        detector = ServerProcess(
            [
                "-m",
                "drift_detector",
                "--model_dir",
                str(bundle.root),
                "--http_port",
                str(drift_port),
                "--host",
                "127.0.0.1",
            ],
            ready_url=f"{drift}/ready",
            python=VENV_DRIFT_PYTHON,
            env={"DRIFT_WINDOW_SIZE": str(args.window), "DRIFT_LOG_LEVEL": "WARNING"},
            log_path=Path(tmp) / "drift.log",
        )
        predictor = ServerProcess(
            [
                "-m",
                "predictor",
                "--model_name",
                MODEL,
                "--model_dir",
                str(bundle.root),
                "--http_port",
                str(http_port),
                "--grpc_port",
                str(grpc_port),
                "--logger_url",
                drift,
                "--inference_service",
                ISVC,
            ],
            ready_url=f"http://127.0.0.1:{http_port}/v2/models/{MODEL}/ready",
            log_path=Path(tmp) / "predictor.log",
        )
        with detector, predictor, httpx.Client(timeout=30) as http:
            url = f"http://127.0.0.1:{http_port}/v1/models/{MODEL}:predict"
            print(
                f"drift detector {drift} (windows of {args.window} rows) <- predictor --logger_url, "
                f"InferenceService {ISVC}"
            )
            windows = 0
            for label, matrix in (("held-out patients", normal), ("same patients, BMI +1 sd", shifted)):
                for start in range(0, rows, 10):
                    r = http.post(url, json={"instances": np.asarray(matrix[start : start + 10]).tolist()})
                    r.raise_for_status()
                    if (start + 10) % args.window == 0:
                        windows += 1
                        show(label, verdicts(http, drift, windows))
            drifted = [
                line
                for line in http.get(f"{drift}/metrics").text.splitlines()
                if line.startswith(("drift_detected{", "drift_windows_drifted_total{"))
            ]
            print("\n".join(drifted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
