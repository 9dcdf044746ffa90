"""The model bundle: what ``training`` writes and every serving component reads.

A bundle is a directory::

    model.onnx              the model; one FP32 input [batch, n_features]
    feature_spec.json       FeatureSpec: raw features, units, ranges, categories, missing policy
    reference.npy           float32 [n, n_features]: encoded training inputs (drift reference)
    reference_scores.npy    float32 [n]: the model's positive-class probability on reference.npy
    model_card.json         metrics, data hash, parameters, ONNX parity, sha256 of model.onnx
    model_card.md           the same, for people

Lineage (issue 14, additive: older cards simply lack it): the card's ``content_hash`` is
:func:`content_hash` of the artifacts (the bundle's identity, independent of the card), and
``lineage`` records ``parent`` (``{"version", "content_hash"}`` or ``null`` for a first model),
``code_version`` (git sha or package version), ``data`` (window and row counts) and
``metrics_diff`` (held-out metric - parent's on the same rows). Bundle versions are immutable
folders ``<root>/<version>/`` (see ``training.versions``).

A directory holding only ``model.onnx`` (or a bare ``.onnx`` path) is accepted by the
predictor too: then there is no spec, no card and no integrity check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving_common.features import FeatureSpec

__all__ = [
    "CARD_FILE",
    "MODEL_FILE",
    "REFERENCE_FILE",
    "REFERENCE_SCORES_FILE",
    "SPEC_FILE",
    "Bundle",
    "BundleError",
    "IntegrityError",
    "content_hash",
    "sha256_file",
]

MODEL_FILE = "model.onnx"
SPEC_FILE = "feature_spec.json"
REFERENCE_FILE = "reference.npy"
REFERENCE_SCORES_FILE = "reference_scores.npy"
CARD_FILE = "model_card.json"
CARD_MD_FILE = "model_card.md"
ARTIFACT_FILES = (MODEL_FILE, SPEC_FILE, REFERENCE_FILE, REFERENCE_SCORES_FILE)
"""The files the content hash covers (the card describes them; it is not part of the identity)."""


class BundleError(Exception):
    """The bundle is missing a file or a file cannot be read."""


class IntegrityError(BundleError):
    """``model.onnx`` does not match the sha256 recorded in the model card."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(root: Path) -> str:
    """sha256 over ``name:sha256`` lines of the artifacts present in ``root`` (sorted by name)."""
    lines = [
        f"{name}:{sha256_file(root / name)}\n" for name in sorted(ARTIFACT_FILES) if (root / name).is_file()
    ]
    if not lines:
        raise BundleError(f"model bundle {str(root)!r} has none of {', '.join(ARTIFACT_FILES)}")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A model bundle on disk. Construct with :meth:`open`."""

    root: Path
    model_path: Path

    @classmethod
    def open(cls, location: str | Path) -> Bundle:
        """Open a bundle directory, or a bare ``.onnx`` file."""
        path = Path(location)
        if path.is_file() and path.suffix == ".onnx":
            return cls(root=path.parent, model_path=path)
        if not path.is_dir():
            raise BundleError(f"model bundle {str(path)!r} is neither a directory nor an .onnx file")
        model = path / MODEL_FILE
        if not model.is_file():
            onnx_files = sorted(path.glob("*.onnx"))
            if len(onnx_files) != 1:
                raise BundleError(
                    f"model bundle {str(path)!r} has no {MODEL_FILE}"
                    + (f" and {len(onnx_files)} other .onnx files" if onnx_files else "")
                )
            model = onnx_files[0]
        return cls(root=path, model_path=model)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        file = self.root / name
        if not file.is_file():
            return None
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as e:
            raise BundleError(f"cannot read {file}: {e}") from e
        if not isinstance(data, dict):
            raise BundleError(f"{file} must hold a JSON object")
        return data

    @property
    def card(self) -> dict[str, Any] | None:
        """The model card, or ``None`` for a bare model."""
        return self._read_json(CARD_FILE)

    @property
    def has_spec(self) -> bool:
        return (self.root / SPEC_FILE).is_file()

    def spec(self) -> FeatureSpec:
        data = self._read_json(SPEC_FILE)
        if data is None:
            raise BundleError(f"model bundle {str(self.root)!r} has no {SPEC_FILE}")
        try:
            return FeatureSpec.model_validate(data)
        except ValueError as e:
            raise BundleError(f"invalid {SPEC_FILE}: {e}") from e

    def _read_npy(self, name: str) -> np.ndarray:
        file = self.root / name
        if not file.is_file():
            raise BundleError(f"model bundle {str(self.root)!r} has no {name}")
        try:
            return np.asarray(np.load(file, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise BundleError(f"cannot read {file}: {e}") from e

    def reference(self) -> np.ndarray:
        """Encoded training inputs, float32 ``[n, n_features]``."""
        return self._read_npy(REFERENCE_FILE).astype(np.float32, copy=False)

    def reference_scores(self) -> np.ndarray:
        """Positive-class probabilities of the model on :meth:`reference`."""
        return self._read_npy(REFERENCE_SCORES_FILE).astype(np.float32, copy=False)

    @property
    def name(self) -> str | None:
        card = self.card
        return None if card is None else str(card.get("name")) if card.get("name") else None

    @property
    def version(self) -> str | None:
        card = self.card
        return None if card is None else str(card.get("version")) if card.get("version") else None

    @property
    def lineage(self) -> dict[str, Any] | None:
        """The card's ``lineage`` (parent, code version, data window, metrics diff), if recorded."""
        card = self.card
        value = None if card is None else card.get("lineage")
        return value if isinstance(value, dict) else None

    def content_hash(self) -> str:
        """:func:`content_hash` of this bundle's artifacts as they are on disk now."""
        return content_hash(self.root)

    def expected_sha256(self) -> str | None:
        card = self.card
        if card is None:
            return None
        value = card.get("artifacts", {}).get(MODEL_FILE, {}).get("sha256")
        return str(value) if value else None

    def verify(self) -> None:
        """Raise :class:`IntegrityError` when model.onnx does not match the card's sha256."""
        expected = self.expected_sha256()
        if expected is None:
            return
        actual = sha256_file(self.model_path)
        if actual != expected:
            raise IntegrityError(
                f"{self.model_path.name} has sha256 {actual} but the model card expects {expected}; "
                "refusing to serve a model that is not the one the card describes"
            )
