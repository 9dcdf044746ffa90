"""A synthetic model bundle for the drift detector, and fresh samples from the same population.

Only what the detector reads: ``feature_spec.json``, ``reference.npy`` and
``reference_scores.npy`` (it never loads ``model.onnx``). Numpy only, so both virtualenvs can
use it. Features are continuous (no ties), one is categorical, like the real diabetes bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from serving_common import REFERENCE_FILE, REFERENCE_SCORES_FILE, SPEC_FILE, Feature, FeatureSpec

NUMERIC = {  # name: (mean, standard deviation)
    "age": (48.0, 13.0),
    "bmi": (26.4, 4.4),
    "bp": (94.6, 13.8),
    "glu": (91.3, 11.5),
}
SEX = ("female", "male")
NAMES = ("age", "sex", "bmi", "bp", "glu")
SCORE_BETA = (2.0, 3.0)
REFERENCE_ROWS = 250

SPEC = FeatureSpec(
    input_name="input",
    features=tuple(
        Feature(name=n, type="categorical", categories=SEX)
        if n == "sex"
        else Feature(name=n, type="numeric", minimum=-1000.0, maximum=1000.0)
        for n in NAMES
    ),
    target="synthetic",
)


class Population:
    """Seeded draws: encoded rows, raw records, scores; ``shift`` moves a feature by k standard deviations."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def rows(self, n: int, shift: dict[str, float] | None = None) -> np.ndarray:
        shift = shift or {}
        columns = []
        for name in NAMES:
            if name == "sex":
                columns.append(self.rng.integers(0, 2, n).astype(np.float64))
            else:
                mean, sd = NUMERIC[name]
                columns.append(self.rng.normal(mean + shift.get(name, 0.0) * sd, sd, n))
        return np.round(np.column_stack(columns), 3).astype(np.float32)

    def records(self, n: int, shift: dict[str, float] | None = None) -> list[dict[str, Any]]:
        return [SPEC.decode_row(row.tolist()) for row in self.rows(n, shift)]

    def scores(self, n: int, shift: float = 0.0) -> np.ndarray:
        a, b = SCORE_BETA
        return np.clip(self.rng.beta(a, b, n) + shift * 0.2, 0.0, 1.0).astype(np.float32)


def write_bundle(out: Path, seed: int = 11) -> Path:
    population = Population(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_FILE).write_text(SPEC.model_dump_json(indent=2))
    np.save(out / REFERENCE_FILE, population.rows(REFERENCE_ROWS))
    np.save(out / REFERENCE_SCORES_FILE, population.scores(REFERENCE_ROWS))
    return out
