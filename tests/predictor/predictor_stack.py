"""Predictor test helpers: start real ``python -m predictor`` processes, call them, compare answers.

Not in conftest.py: every test folder has a conftest module, so ``from conftest import`` is ambiguous."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from support import MODEL, REPO, PredictorProcess, predictor_process

Predictor = PredictorProcess


def start_predictor(
    bundle: Path, log: Path, env: dict[str, str] | None = None, extra: list[str] | None = None
) -> Predictor:
    p = predictor_process(bundle, log, env=env, extra=extra or ())
    p.process.start()
    return p


def ort_outputs(bundle: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's own answer, in-process: what every client must get."""
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"input": x})
    return label, proba


def assert_same_probabilities(got: np.ndarray, want: np.ndarray) -> None:
    """Equal to onnxruntime's own float32 result up to summation order (batch size and thread
    count change the order in which onnxruntime adds tree outputs: 1 ulp, ~1.2e-7)."""
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-7)


def triton_grpc(
    server: Predictor,
    workdir: Path,
    x: np.ndarray,
    *,
    name: str = "input",
    datatype: str = "FP32",
    shape: list[int] | None = None,
    outputs: list[str] | None = None,
    request_id: str | None = None,
    metadata: bool = False,
    model: str = MODEL,
) -> dict[str, Any]:
    """Call the server with the real tritonclient.grpc in a child process (see tests/clients)."""
    workdir.mkdir(parents=True, exist_ok=True)
    np.save(workdir / "x.npy", x)
    spec = {
        "inputs": [
            {
                "name": name,
                "datatype": datatype,
                "shape": shape or list(x.shape),
                "npy": str(workdir / "x.npy"),
            }
        ],
        "outputs": outputs,
        "request_id": request_id,
        "metadata": metadata,
    }
    (workdir / "request.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "clients" / "triton_grpc.py"),
            server.grpc,
            model,
            str(workdir / "request.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
