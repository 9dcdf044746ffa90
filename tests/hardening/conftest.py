"""Hardening fixtures: one real predictor and one real drift detector for the hostile-input suites.

Each fixture's process is started once per module and stopped by PID (``tests/support.py``); the
tests that change settings (limits, drain, shedding) start their own processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_stack import Detector, start_detector
from support import PredictorProcess, predictor_process


@pytest.fixture(scope="module")
def predictor(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PredictorProcess]:
    p = predictor_process(gbm_bundle, tmp_path_factory.mktemp("hardening") / "predictor.log")
    p.process.start()
    yield p
    assert p.process.stop() == 0


@pytest.fixture(scope="module")
def detector(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detector]:
    d = start_detector(gbm_bundle, tmp_path_factory.mktemp("hardening") / "detector.log")
    yield d
    assert d.process.stop() == 0
