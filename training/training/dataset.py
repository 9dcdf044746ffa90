"""The retraining data set: original training data + labelled production rows, split by time.

The hold-out is the most recent labelled window (``holdout_seconds`` before the newest labelled
prediction, or the newest ``holdout_fraction`` of rows when no window is given); training uses
the production rows before it plus (a share of) the original data. Champion and challenger are
both judged on that hold-out only, so the comparison is about the population served now.

A data set that cannot support that comparison is refused with :class:`DataSetError`, whose
message says what is missing (too few rows, one class only, a feature never present, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from serving_common import FeatureSpec

from training.data import Split
from training.production import LabelledRows

__all__ = ["DataSet", "DataSetError", "Requirements", "build"]


class DataSetError(ValueError):
    """The labelled data cannot support a retraining run; the message says what is missing."""


@dataclass(frozen=True)
class Requirements:
    min_production_rows: int = 200
    min_holdout_rows: int = 100
    min_holdout_per_class: int = 15
    min_train_production_rows: int = 50
    holdout_seconds: float | None = None
    holdout_fraction: float = 0.3
    original_share: float = 0.5
    """Largest share of the training rows taken from the original data set (0 = production only)."""


@dataclass(frozen=True)
class DataSet:
    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    window: dict[str, float]
    """``train_from``, ``train_until`` (production part), ``holdout_from``, ``holdout_until`` (UNIX s)."""
    counts: dict[str, int]
    """``original``, ``production``, ``train``, ``train_production``, ``holdout``."""


def build(
    spec: FeatureSpec, original: Split, production: LabelledRows, req: Requirements, seed: int
) -> DataSet:
    n = len(production)
    if n < req.min_production_rows:
        raise DataSetError(
            f"only {n} labelled production rows in {production.source}; at least "
            f"{req.min_production_rows} are needed (send feedback, or widen --since)"
        )
    never = [name for j, name in enumerate(spec.names) if np.isnan(production.x[:, j]).all()]
    if never:
        raise DataSetError(f"feature(s) {', '.join(never)} missing in all {n} production rows")
    newest = float(production.t[-1])
    if req.holdout_seconds is not None:
        start = newest - req.holdout_seconds
        cut = int(np.searchsorted(production.t, start, side="left"))
    else:
        cut = n - max(1, round(n * req.holdout_fraction))
    holdout_y = production.y[cut:]
    if len(holdout_y) < req.min_holdout_rows:
        raise DataSetError(
            f"the hold-out (most recent window) has {len(holdout_y)} labelled rows; at least "
            f"{req.min_holdout_rows} are needed"
        )
    per_class = np.bincount(holdout_y, minlength=len(spec.classes))
    if per_class.min() < req.min_holdout_per_class:
        counts = ", ".join(f"{c}={k}" for c, k in zip(spec.classes, per_class.tolist(), strict=True))
        raise DataSetError(
            f"the hold-out needs at least {req.min_holdout_per_class} rows of every class, has {counts}"
        )
    if cut < req.min_train_production_rows:
        raise DataSetError(
            f"only {cut} labelled production rows before the hold-out window; at least "
            f"{req.min_train_production_rows} are needed to learn from"
        )
    x_orig = spec.vectorise([*original.train_records, *original.test_records])
    y_orig = np.concatenate([original.y_train, original.y_test])
    if req.original_share < 1.0:
        cap = int(req.original_share / (1.0 - req.original_share) * cut) if req.original_share > 0 else 0
        if cap < len(y_orig):
            keep = np.sort(np.random.default_rng(seed).choice(len(y_orig), size=cap, replace=False))
            x_orig, y_orig = x_orig[keep], y_orig[keep]
    x_train = np.concatenate([x_orig, production.x[:cut]]).astype(np.float32)
    y_train = np.concatenate([y_orig, production.y[:cut]]).astype(np.int64)
    if len(np.unique(y_train)) < len(spec.classes):
        raise DataSetError("the training rows hold only one class")
    return DataSet(
        x_train=x_train,
        y_train=y_train,
        x_holdout=production.x[cut:],
        y_holdout=holdout_y,
        window={
            "train_from": float(production.t[0]),
            "train_until": float(production.t[cut - 1]),
            "holdout_from": float(production.t[cut]),
            "holdout_until": newest,
        },
        counts={
            "original": len(y_orig),
            "production": n,
            "train": len(y_train),
            "train_production": cut,
            "holdout": len(holdout_y),
        },
    )
