"""Explainer fixtures (the stack itself is in ``explainer_stack.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from explainer_stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(gbm_bundle, tmp_path_factory.mktemp("explainer-logs")) as s:
        yield s
