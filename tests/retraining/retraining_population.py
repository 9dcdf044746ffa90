"""Synthetic production populations with labels, for retraining tests and the local scenario.

``shifted``: patients older and heavier than the training data, whose risk follows a changed
rule (high risk when BMI > 30 or blood sugar > 105: the population the stable model never saw);
``noisy``: the same population with labels replaced by coin flips at rate ``noise``.
Rows are raw records (what clients send) plus the label and a prediction time.
``LabelledTraffic``: such a population through Envoy with its labels fed back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

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


class LabelledTraffic:
    """Shifted patients through a front door (V1 ``:predict``) with their true labels fed back
    (``:feedback``, per answer id and row), as the local scenario and the system test send them.

    Payload loggers send asynchronously, so a label can reach the store before its prediction:
    pairs answered ``unknown_id`` are sent again with the next batch (each at most ``retries``
    times), and :meth:`flush` waits for the last ones (bounded). ``seen`` counts the answers'
    ``model_version`` (``HTTP <code>`` for other answers, e.g. a track restarting) and the pairs'
    outcomes (``label:<outcome>``).
    """

    def __init__(self, client: Any, url: str, model: str, *, batch: int = 20, retries: int = 40) -> None:
        self.client, self.url, self.model, self.batch, self.retries = client, url, model, batch, retries
        self.pending: list[tuple[dict[str, object], int]] = []
        self.seen: dict[str, int] = {}

    def _count(self, key: str, n: int = 1) -> None:
        self.seen[key] = self.seen.get(key, 0) + n

    def send(self, pop: Population, headers: dict[str, str] | None = None) -> dict[str, int]:
        """All of ``pop`` in batches, labels after each; returns this call's answers by version."""
        versions: dict[str, int] = {}
        for k in range(0, len(pop.records), self.batch):
            answer = self.client.post(
                f"{self.url}/v1/models/{self.model}:predict",
                json={"instances": pop.records[k : k + self.batch]},
                headers=headers or {},
            )
            key = (
                answer.json()["model_version"] if answer.status_code == 200 else f"HTTP {answer.status_code}"
            )
            versions[key] = versions.get(key, 0) + 1
            self._count(key)
            if answer.status_code == 200:
                rid = answer.json()["id"]
                labels = pop.labels[k : k + self.batch]
                self.pending += [({"id": rid, "row": i, "label": y}, 0) for i, y in enumerate(labels)]
            self.label()
        return versions

    def label(self) -> None:
        """Post the pending labels once; keep those whose prediction is not recorded yet."""
        if not self.pending:
            return
        pairs = [p for p, _ in self.pending]
        answer = self.client.post(f"{self.url}/v1/models/{self.model}:feedback", json={"instances": pairs})
        if answer.status_code not in (200, 422):
            self._count(f"label:HTTP {answer.status_code}", len(pairs))
            return  # kept: sent again with the next batch
        results = answer.json().get("results") or [{"outcome": "accepted"}] * len(pairs)
        keep: list[tuple[dict[str, object], int]] = []
        for (pair, tries), result in zip(self.pending, results, strict=True):
            outcome = str(result.get("outcome"))
            if outcome == "unknown_id" and tries + 1 < self.retries:
                keep.append((pair, tries + 1))
            else:
                self._count(f"label:{outcome}")
        self.pending = keep

    def flush(self, seconds: float = 15.0) -> None:
        """Until every pending label is taken or given up on (at most ``seconds``)."""
        deadline = time.monotonic() + seconds
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.5)
            self.label()
