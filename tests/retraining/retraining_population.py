"""Synthetic production populations with labels, for retraining tests and the local scenario.

``shifted``: patients older and heavier than the training data, whose risk follows a changed
rule (high risk when BMI > 30 or blood sugar > 105: the population the stable model never saw);
``noisy``: the same population with labels replaced by coin flips at rate ``noise``.
Rows are raw records (what clients send) plus the label and a prediction time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from serving_common import Bundle
from sklearn.datasets import load_diabetes

COLUMNS = ("age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu")
CLASSES = ("low_risk", "high_risk")


@dataclass(frozen=True)
class Population:
    records: list[dict[str, float | str]]
    labels: list[str]
    times: list[float]


def shifted(
    n: int, *, seed: int, start: float = 1_800_000_000.0, step: float = 60.0, noise: float = 0.0
) -> Population:
    rng = np.random.default_rng(seed)
    raw = np.asarray(load_diabetes(scaled=False).data, dtype=np.float64)
    rows = raw[rng.integers(0, len(raw), size=n)].copy()
    rows[:, 0] = np.clip(rows[:, 0] + 8 + rng.normal(0, 3, n), 19, 95)
    rows[:, 2] = np.clip(rows[:, 2] + 3 + rng.normal(0, 1.5, n), 15, 60)
    rows[:, 9] = np.clip(rows[:, 9] + 6 + rng.normal(0, 5, n), 50, 200)
    y = ((rows[:, 2] > 30) | (rows[:, 9] > 105)).astype(np.int64)
    flip = rng.random(n) < noise
    y = np.where(flip, rng.integers(0, 2, n), y)
    records: list[dict[str, float | str]] = []
    for r in rows:
        rec: dict[str, float | str] = {c: round(float(v), 4) for c, v in zip(COLUMNS, r, strict=True)}
        rec["sex"] = "female" if int(r[1]) == 1 else "male"
        records.append(rec)
    return Population(records, [CLASSES[int(v)] for v in y], [start + i * step for i in range(n)])


def export_rows(champion: Bundle, pop: Population) -> list[dict[str, object]]:
    """The population as the feedback store's ``GET /labelled`` rows (encoded features, class names)."""
    x = champion.spec().vectorise(pop.records)
    return [
        {
            "id": f"req-{i}",
            "row": 0,
            "inferenceservice": "diabetes-risk",
            "namespace": "default",
            "component": "predictor",
            "model_version": champion.version,
            "predicted_at": t,
            "labelled_at": t + 3600,
            "features": [None if math.isnan(v) else float(v) for v in row],
            "score": 0.5,
            "predicted": "low_risk",
            "label": label,
        }
        for i, (row, label, t) in enumerate(zip(x, pop.labels, pop.times, strict=True))
    ]
