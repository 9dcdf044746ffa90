"""A small bundle for the feedback tests (numpy + serving_common only: both virtualenvs), and events.

What the detector reads (``feature_spec.json``, ``reference.npy``, ``reference_scores.npy``) and
the ``model_card.json`` metrics live quality is compared with. Classes ``low_risk``/``high_risk``
like the real bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from serving_common import REFERENCE_FILE, REFERENCE_SCORES_FILE, SPEC_FILE, Feature, FeatureSpec
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

NAMES = ("age", "sex", "bmi")
CLASSES = ("low_risk", "high_risk")
CARD = {"accuracy": 0.74, "roc_auc": 0.82}
SPEC = FeatureSpec(
    input_name="input",
    features=(
        Feature(name="age", type="numeric", minimum=0.0, maximum=120.0),
        Feature(name="sex", type="categorical", categories=("female", "male")),
        Feature(name="bmi", type="numeric", minimum=10.0, maximum=60.0),
    ),
    classes=CLASSES,
    target="synthetic",
)


def rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack(
        [rng.normal(50, 12, n).round(1), rng.integers(0, 2, n), rng.normal(26, 4, n).round(1)]
    ).astype(np.float32)


def write_bundle(out: Path) -> Path:
    rng = np.random.default_rng(3)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_FILE).write_text(SPEC.model_dump_json(indent=2))
    np.save(out / REFERENCE_FILE, rows(rng, 250))
    np.save(out / REFERENCE_SCORES_FILE, rng.beta(2, 3, 250).astype(np.float32))
    (out / "model_card.json").write_text(json.dumps({"name": "diabetes-risk", "metrics": CARD}))
    return out


def ce_headers(
    event_id: str, kind: str, isvc: str = "risk-stable", component: str = "predictor"
) -> dict[str, str]:
    """Binary-mode CloudEvent headers as KServe's agent writes them."""
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
        "ce-source": "http://localhost:9081/",
        "ce-inferenceservicename": isvc,
        "ce-namespace": "ml",
        "ce-component": component,
        "content-type": "application/json",
    }


def v2_request(values: np.ndarray, request_id: str) -> dict[str, Any]:
    return {
        "id": request_id,
        "inputs": [
            {
                "name": "input",
                "shape": list(values.shape),
                "datatype": "FP32",
                "data": values.ravel().tolist(),
            }
        ],
    }


def v2_response(scores: np.ndarray, request_id: str, model: str = "diabetes-risk") -> dict[str, Any]:
    probabilities = np.column_stack([1 - scores, scores])
    return {
        "id": request_id,
        "model_name": model,
        "model_version": "1",
        "outputs": [
            {
                "name": "label",
                "shape": [len(scores)],
                "datatype": "INT64",
                "data": [int(s >= 0.5) for s in scores],
            },
            {
                "name": "probabilities",
                "shape": list(probabilities.shape),
                "datatype": "FP32",
                "data": probabilities.ravel().tolist(),
            },
        ],
    }
