"""Trains one model and writes its bundle: model.onnx, feature spec, reference sample, model card."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from serving_common import (
    MODEL_FILE,
    REFERENCE_FILE,
    REFERENCE_SCORES_FILE,
    SPEC_FILE,
    FeatureSpec,
    sha256_file,
)
from serving_common.bundle import ARTIFACT_FILES, content_hash

from training import card as model_card
from training import data, spec
from training.lineage import code_version
from training.models import OUTPUT_PROBABILITIES, TRAINERS, Trained

PARITY_TOLERANCE = 1e-4
REFERENCE_ROWS = 250
"""How many training rows go into the drift reference sample."""
DESCRIPTION = (
    "Binary classifier: is a diabetes patient's disease progression after one year "
    "above the training median (high risk)?"
)


class ParityError(RuntimeError):
    """The ONNX model's outputs differ from the native model's by more than the tolerance."""


def _signature(args: list[Any]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "type": a.type, "shape": [d if isinstance(d, int) else -1 for d in a.shape]}
        for a in args
    ]


log = logging.getLogger("training")


def train_bundle(
    kind: str, out: Path, *, seed: int = 7, name: str = "diabetes-risk", version: str | None = None
) -> dict[str, Any]:
    started = time.perf_counter()

    def step(n: int, what: str) -> None:
        log.info(
            "[%d/4] %s (%.1f s)", n, what, time.perf_counter() - started, extra={"step": n, "model": kind}
        )

    step(1, f"loading the data set and building the feature spec (seed {seed})")
    split = data.load(seed)
    feature_spec = spec.build(split)
    x_train = feature_spec.vectorise(split.train_records)
    x_test = feature_spec.vectorise(split.test_records)

    step(2, f"training {kind} on {len(split.train_records)} records and exporting it to ONNX")
    trained = TRAINERS[kind](x_train, split.y_train, seed, feature_spec.input_name)
    step(3, f"checking ONNX parity on {len(split.test_records)} held-out records")
    onnx_proba, diff = check_parity(trained, feature_spec.input_name, x_test)
    card: dict[str, Any] = {
        "name": name,
        "version": version or f"{kind}-1",
        "description": DESCRIPTION,
        "intended_use": "Demonstration of the serving stack; not for clinical use.",
        "model_type": kind,
        "classes": list(feature_spec.classes),
        "data": {
            "source": "sklearn.datasets.load_diabetes(scaled=False)",
            "target": feature_spec.target,
            "seed": seed,
            "n_train": len(split.train_records),
            "n_test": len(split.test_records),
            "sha256": split.sha256,
        },
        "metrics": model_card.metrics(split.y_test, onnx_proba),
        "parameters": trained.parameters,
        "parity": {"max_abs_diff": diff, "tolerance": PARITY_TOLERANCE, "n": len(x_test)},
        "lineage": {"parent": None, "code_version": code_version(), "data": None, "metrics_diff": None},
    }
    step(4, f"writing the bundle to {out}")
    write_bundle(out, trained, feature_spec, x_train, card, seed=seed)
    return card


def check_parity(trained: Trained, input_name: str, x_eval: np.ndarray) -> tuple[np.ndarray, float]:
    """ONNX probabilities on ``x_eval`` and their largest difference to the native model's."""
    session = ort.InferenceSession(trained.onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_proba = np.asarray(session.run([OUTPUT_PROBABILITIES], {input_name: x_eval})[0])
    native_proba = trained.predict_proba(x_eval)
    diff = float(np.max(np.abs(onnx_proba.astype(np.float64) - native_proba)))
    if diff > PARITY_TOLERANCE:
        raise ParityError(f"ONNX and native probabilities differ by {diff:.3e} on the held-out set")
    return onnx_proba, diff


def write_bundle(
    out: Path,
    trained: Trained,
    feature_spec: FeatureSpec,
    x_reference: np.ndarray,
    card: dict[str, Any],
    *,
    seed: int,
) -> None:
    """Write model, spec, reference sample (drawn from ``x_reference``: the population the drift
    detector will hold live traffic against) and its scores, then the card with signature,
    artifact hashes and the content hash (``card`` is completed in place)."""
    session = ort.InferenceSession(trained.onnx_bytes, providers=["CPUExecutionProvider"])
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(trained.onnx_bytes)
    (out / SPEC_FILE).write_text(feature_spec.model_dump_json(indent=2) + "\n")
    rng = np.random.default_rng(seed)
    size = min(REFERENCE_ROWS, len(x_reference))
    rows = np.sort(rng.choice(len(x_reference), size=size, replace=False))
    reference = x_reference[rows]
    np.save(out / REFERENCE_FILE, reference)
    ref_scores = session.run([OUTPUT_PROBABILITIES], {feature_spec.input_name: reference})[0][:, 1]
    np.save(out / REFERENCE_SCORES_FILE, ref_scores.astype(np.float32))
    card["signature"] = {
        "inputs": _signature(session.get_inputs()),
        "outputs": _signature(session.get_outputs()),
    }
    card["artifacts"] = {file: {"sha256": sha256_file(out / file)} for file in ARTIFACT_FILES}
    card["content_hash"] = content_hash(out)
    model_card.write(card, out)
