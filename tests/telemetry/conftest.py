"""Telemetry fixtures: real predictors whose ``--logger_url`` points at a recording receiver.

Each module-scoped predictor logs into its own :func:`telemetry_receiver.recording`; tests
tell their events apart by ``ce-id``. Helpers live in ``telemetry_stack.py`` (not here).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "drift_detector"))  # drift_server

from recording_receiver import Recorder, recording
from telemetry_stack import LoggedPredictor, logged_predictor


@pytest.fixture(scope="module")
def binary(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedPredictor]:
    """A predictor logging in the agent's binary format (the default)."""
    with recording() as recorder, logged_predictor(gbm_bundle, recorder, tmp_path_factory, {}) as p:
        yield p


@pytest.fixture(scope="module")
def batch(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedPredictor]:
    """A predictor logging in the opt-in batch format."""
    env = {"PREDICTOR_LOGGER_FORMAT": "batch"}
    with recording() as recorder, logged_predictor(gbm_bundle, recorder, tmp_path_factory, env) as p:
        yield p


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording() as box:
        yield box
