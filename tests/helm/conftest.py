"""Fixtures for the chart tests: the real helm binary and the CRD schemas vendored in schemas/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chart_support import CRDS, Helm, find_tool, in_ci


def _missing(what: str) -> None:
    """Fail in CI (env CI=true), skip visibly elsewhere."""
    if in_ci():
        pytest.fail(f"{what} (CI=true makes this mandatory)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = find_tool("helm")
    if binary is None:
        _missing("helm not found in .tools/bin or on PATH: run `make tools`")
    assert binary is not None
    return Helm(binary)


@pytest.fixture(scope="session")
def crds_dir() -> Path:
    """The project's own copy: a missing schema is a failure, never a skip."""
    assert any(CRDS.rglob("*.yaml")), f"CRD schemas missing from {CRDS} (see its SOURCES.md)"
    return CRDS


@pytest.fixture(scope="session")
def default_docs(helm: Helm) -> list[dict[str, Any]]:
    return helm.template()
