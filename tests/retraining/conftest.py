"""Retraining fixtures: the champion bundle (trained once per session in the shared conftest),
labelled production populations written as the feedback store's ``/labelled`` rows."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from retraining_population import Population, shifted
from serving_common import Bundle

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rollout"))  # fake_kube_api

WriteLabelled = Callable[..., Path]


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


@pytest.fixture
def write_labelled(gbm: Bundle, tmp_path: Path) -> WriteLabelled:
    """``write_labelled(n, seed=, noise=)`` -> a JSON Lines file of labelled production rows."""

    def write(n: int, *, seed: int = 3, noise: float = 0.0) -> Path:
        path = tmp_path / f"labelled-{n}-{seed}-{noise}.jsonl"
        rows = export_rows(gbm, shifted(n, seed=seed, noise=noise))
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write
