"""System tests: the whole stack of ``make up`` (one per module, it takes ~20-40 s to start)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack_support import LocalStack


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, gbm_bundle: Path, mlp_bundle: Path
) -> Iterator[LocalStack]:
    """The stack of ``make up`` on the session's freshly trained bundles (``pvc://model-bundles/gbm|mlp``)."""
    bundles = tmp_path_factory.mktemp("bundles")
    (bundles / "gbm").symlink_to(gbm_bundle)
    (bundles / "mlp").symlink_to(mlp_bundle)
    s = LocalStack(tmp_path_factory.mktemp("stack"), bundles)
    try:
        s.up()
        yield s
    finally:
        s.down()
