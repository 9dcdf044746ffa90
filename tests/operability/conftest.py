"""Operability fixtures: real ``python -m <component>`` runs that must fail fast, with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def broken_bundles(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bundles a platform engineer might really mount: tampered, not a model, a bare bad .onnx."""
    root = tmp_path_factory.mktemp("broken-bundles")
    tampered = root / "tampered"
    shutil.copytree(gbm_bundle, tampered)
    with (tampered / "model.onnx").open("ab") as f:
        f.write(b"\0")
    garbage = root / "garbage"
    shutil.copytree(gbm_bundle, garbage)
    (garbage / "model.onnx").write_bytes(b"not an onnx model\n")
    bare = root / "bare.onnx"
    bare.write_bytes(b"\x08\x07truncated")
    return {"tampered": tampered, "garbage": garbage, "bare": bare, "missing": root / "nowhere"}
