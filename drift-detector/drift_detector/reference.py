"""The reference the windows are compared with, read from the model bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from serving_common import MODEL_FILE, REFERENCE_SCORES_FILE, Bundle, BundleError, FeatureSpec

__all__ = ["Reference"]


@dataclass(frozen=True)
class Reference:
    names: tuple[str, ...]
    categorical: tuple[int, ...]
    spec: FeatureSpec | None
    features: np.ndarray
    """float32 ``[n, n_features]``, encoded like the model's input."""
    scores: np.ndarray | None
    """float32 ``[n]`` positive-class scores, or ``None`` when the bundle has none."""
    version: str | None = None
    """The model card's ``version`` (``gbm-1``): the model whose answers ``scores`` describe.
    Prediction drift is judged only for responses of this ``model_version`` (or of none)."""

    @classmethod
    def load(cls, model_dir: Path) -> Reference:
        """Read ``feature_spec.json`` (optional), ``reference.npy`` and ``reference_scores.npy`` (optional).

        Only these files are needed: the detector never loads ``model.onnx``.
        """
        if not model_dir.is_dir():
            raise BundleError(f"model bundle {str(model_dir)!r} is not a directory")
        bundle = Bundle(root=model_dir, model_path=model_dir / MODEL_FILE)
        features = bundle.reference()
        if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 1:
            raise BundleError(f"reference.npy must be [n >= 2, n_features], not {list(features.shape)}")
        if not np.isfinite(features).all():
            raise BundleError("reference.npy holds NaN or infinite values")
        spec = bundle.spec() if bundle.has_spec else None
        if spec is not None:
            if spec.n_features != features.shape[1]:
                raise BundleError(
                    f"feature_spec.json has {spec.n_features} features but reference.npy has "
                    f"{features.shape[1]} columns"
                )
            names = tuple(spec.names)
            categorical = tuple(spec.categorical_indices())
        else:
            names = tuple(f"f{i}" for i in range(features.shape[1]))
            categorical = ()
        scores = None
        if (model_dir / REFERENCE_SCORES_FILE).is_file():
            scores = bundle.reference_scores().reshape(-1)
            if len(scores) < 2 or not np.isfinite(scores).all():
                raise BundleError("reference_scores.npy must hold at least 2 finite scores")
        return cls(
            names=names,
            categorical=categorical,
            spec=spec,
            features=features,
            scores=scores,
            version=bundle.version,
        )
