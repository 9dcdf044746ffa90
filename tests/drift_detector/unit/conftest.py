"""In-process tests needing Alibi Detect: `.venv-drift/bin/python -m pytest tests/drift_detector/unit`."""

from __future__ import annotations

import numpy as np
import pytest
from drift_population import Population, write_bundle  # noqa: F401  (tests/drift_detector on sys.path)


@pytest.fixture(scope="session")
def reference() -> np.ndarray:
    return Population(seed=11).rows(250)
