"""Binary classification quality of labelled predictions (numpy only; equal to scikit-learn's).

``labels`` and ``predicted`` are class indices (1 = the positive class, ``classes[1]``),
``scores`` the predicted probability of the positive class. Undefined values are NaN (precision
without positive predictions, recall or ROC AUC without both classes among the labels).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["EPS", "quality"]

EPS = 1e-15
"""Scores are clipped to ``[EPS, 1 - EPS]`` for the log loss."""


def quality(labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    y = labels.astype(bool)
    p = predicted.astype(bool)
    s = scores.astype(np.float64)
    n = len(y)
    if n == 0:
        return dict.fromkeys(
            ("accuracy", "precision", "recall", "f1", "roc_auc", "brier_score", "log_loss"), np.nan
        )
    tp = float(np.sum(y & p))
    fp = float(np.sum(~y & p))
    fn = float(np.sum(y & ~p))
    precision = tp / (tp + fp) if tp + fp else np.nan
    recall = tp / (tp + fn) if tp + fn else np.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan
    clipped = np.clip(s, EPS, 1 - EPS)
    return {
        "accuracy": float(np.mean(y == p)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y, s),
        "brier_score": float(np.mean((s - y) ** 2)),
        "log_loss": float(-np.mean(np.where(y, np.log(clipped), np.log(1 - clipped)))),
    }


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))
