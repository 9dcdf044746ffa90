"""Predictor fixtures: real ``python -m predictor`` processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from predictor_stack import Predictor, start_predictor
from serving_common import Bundle


@pytest.fixture(scope="module")
def predictor(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Predictor]:
    """The stable (gbm) model served by a real predictor process."""
    p = start_predictor(
        gbm_bundle, tmp_path_factory.mktemp("predictor") / "predictor.log", env={"PREDICTOR_MAX_ROWS": "256"}
    )
    yield p
    assert p.process.stop() is not None


@pytest.fixture(scope="module")
def mlp_predictor(mlp_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Predictor]:
    p = start_predictor(mlp_bundle, tmp_path_factory.mktemp("predictor-mlp") / "predictor.log")
    yield p
    p.process.stop()


@pytest.fixture(scope="session")
def held_out(gbm_bundle: Path) -> np.ndarray:
    """The held-out records, vectorised by the shared feature spec."""
    from training import data

    spec = Bundle.open(gbm_bundle).spec()
    return spec.vectorise(data.load(7).test_records)
