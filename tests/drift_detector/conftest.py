"""Drift detector fixtures, usable from both virtualenvs (numpy and serving_common only).

``unit/`` needs Alibi Detect (``.venv-drift``) and is collected only where it is installed;
the end-to-end tests here run in ``.venv`` and start ``.venv-drift/bin/python -m drift_detector``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from drift_population import write_bundle

collect_ignore = [] if importlib.util.find_spec("alibi_detect") else ["unit"]
if importlib.util.find_spec("kserve") is None:  # the drift venv runs unit/ only
    collect_ignore += [str(p.name) for p in Path(__file__).parent.glob("test_*.py")]


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """feature_spec.json, reference.npy and reference_scores.npy of a known population."""
    return write_bundle(tmp_path_factory.mktemp("drift-bundle"))
