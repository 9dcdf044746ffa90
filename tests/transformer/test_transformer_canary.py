"""The canary (torch MLP) bundle through transformer + predictor: no skew there either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from transformer_stack import MODEL, Server, component


@pytest.fixture(scope="module")
def canary(mlp_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("canary-logs")
    predictor = component("predictor", ["--model_dir", str(mlp_bundle)], logs / "predictor.log")
    transformer = component(
        "transformer",
        ["--model_dir", str(mlp_bundle), "--predictor_host", f"127.0.0.1:{predictor.grpc_port}"],
        logs / "transformer.log",
    )  # no --predictor_protocol: TRANSFORMER_PREDICTOR_PROTOCOL's default, grpc-v2
    try:
        predictor.process.start(wait=False)
        transformer.process.start(wait=False)
        predictor.process.wait_ready()
        transformer.process.wait_ready()
        yield transformer
    finally:
        transformer.process.stop()
        predictor.process.stop()


def test_every_held_out_record_matches_the_training_pipeline(canary: Server, mlp_bundle: Path) -> None:
    from serving_common import Bundle

    from training import data

    records: list[dict[str, Any]] = data.load(7).test_records
    spec = Bundle.open(mlp_bundle).spec()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(mlp_bundle / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    label, proba = session.run(["label", "probabilities"], {"input": spec.vectorise(records)})

    r = httpx.post(canary.v1, json={"instances": records}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == MODEL and body["model_version"] == "mlp-1"
    got = body["predictions"]
    assert [p["label"] for p in got] == [spec.classes[i] for i in label]
    got_proba = np.array([[p["probabilities"][c] for c in spec.classes] for p in got], dtype=np.float32)
    np.testing.assert_array_equal(got_proba, proba)
