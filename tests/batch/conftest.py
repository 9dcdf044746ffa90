"""Batch scoring fixtures: the CLI runs as a real process on files in tmp_path (bundles: tests/conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_common import Bundle, FeatureSpec


@pytest.fixture(scope="session")
def spec(gbm_bundle: Path) -> FeatureSpec:
    return Bundle.open(gbm_bundle).spec()
