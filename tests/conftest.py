"""Fixtures every test folder shares: model bundles trained in a temporary folder (never committed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from promtool_rules import find_promtool
from serving_common import Bundle


def _train(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Path:
    from training.bundle_writer import train_bundle

    out = tmp_path_factory.mktemp(f"bundle-{kind}")
    train_bundle(kind, out)
    return out


@pytest.fixture(scope="session")
def gbm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stable model's bundle (scikit-learn gradient boosting), trained once per session."""
    return _train(tmp_path_factory, "gbm")


@pytest.fixture(scope="session")
def mlp_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The canary model's bundle (torch MLP), trained once per session."""
    return _train(tmp_path_factory, "mlp")


@pytest.fixture(scope="session")
def gbm(gbm_bundle: Path) -> Bundle:
    return Bundle.open(gbm_bundle)


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (``make tools``); missing, it fails in CI (``CI=true``) and skips visibly elsewhere."""
    found = find_promtool()
    if found is None:
        message = "promtool not found in .tools/bin or on PATH: run `make tools`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true makes this mandatory)")
        pytest.skip(message)
    return found
