"""Feedback store fixtures, usable from both virtualenvs.

``unit/`` needs the detector's packages (SQLAlchemy, Alembic: ``.venv-drift``) and is collected
only where they are installed; the end-to-end tests here run in ``.venv`` and start
``.venv-drift/bin/python -m drift_detector`` beside the real predictor.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from feedback_bundle import write_bundle

collect_ignore = (
    [] if importlib.util.find_spec("sqlalchemy") and importlib.util.find_spec("alembic") else ["unit"]
)
if importlib.util.find_spec("kserve") is None:  # the drift venv runs unit/ only
    collect_ignore += [str(p.name) for p in Path(__file__).parent.glob("test_*.py")]


@pytest.fixture(scope="session")
def feedback_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("feedback-bundle"))
