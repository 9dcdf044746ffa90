"""Drift detector fixtures, usable from both virtualenvs (numpy, httpx and serving_common only).

``unit/`` needs Alibi Detect (``.venv-drift``) and is collected only where it is installed;
the end-to-end tests here run in ``.venv`` and start ``.venv-drift/bin/python -m drift_detector``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from drift_population import write_bundle
from drift_receiver import WATCHED, WINDOW, Receiver, receiving
from drift_server import start_detector

collect_ignore = [] if importlib.util.find_spec("alibi_detect") else ["unit"]
if importlib.util.find_spec("kserve") is None:  # the drift venv runs unit/ only
    collect_ignore += [str(p.name) for p in Path(__file__).parent.glob("test_*.py")]


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """feature_spec.json, reference.npy and reference_scores.npy of a known population."""
    return write_bundle(tmp_path_factory.mktemp("drift-bundle"))


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """The drift notification sink of the shared detector."""
    with receiving() as box:
        yield box


@pytest.fixture(scope="session")
def detector(
    synthetic_bundle: Path, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One real detector for the e2e tests: windows of 100 rows, Bonferroni at 0.05, an allow-list, a sink."""
    url, proc = start_detector(
        synthetic_bundle,
        tmp_path_factory.mktemp("drift") / "drift.log",
        {
            "DRIFT_WINDOW_SIZE": str(WINDOW),
            "DRIFT_P_VAL": "0.05",
            "DRIFT_CORRECTION": "bonferroni",
            "DRIFT_INFERENCE_SERVICES": json.dumps(WATCHED),
            "DRIFT_SINK_URL": receiver.url + "drift",
            "DRIFT_MAX_BODY_BYTES": str(1 << 20),
        },
    )
    yield url
    assert proc.stop() == 0, proc.output()  # SIGTERM: graceful shutdown, exit 0
    assert "Application shutdown complete" in proc.output(), proc.output()
