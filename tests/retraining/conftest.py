"""Retraining fixtures: the champion bundle (trained once per session in the shared conftest),
labelled production populations written as the feedback store's ``/labelled`` rows."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from retraining_population import export_rows, shifted
from serving_common import Bundle

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rollout"))  # fake_kube_api

WriteLabelled = Callable[..., Path]


@pytest.fixture
def write_labelled(gbm: Bundle, tmp_path: Path) -> WriteLabelled:
    """``write_labelled(n, seed=, noise=)`` -> a JSON Lines file of labelled production rows."""

    def write(n: int, *, seed: int = 3, noise: float = 0.0) -> Path:
        path = tmp_path / f"labelled-{n}-{seed}-{noise}.jsonl"
        rows = export_rows(gbm, shifted(n, seed=seed, noise=noise))
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write
