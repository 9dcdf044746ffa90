"""Live quality numbers equal scikit-learn's on the same pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from drift_detector.feedback.quality import quality
from sklearn import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quality_equals_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 400), 0.001, 0.999).round(2)  # ties on purpose
    predicted = (scores >= 0.5).astype(int)
    got = quality(labels, scores, predicted)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted), abs=1e-12)
    assert got["precision"] == pytest.approx(metrics.precision_score(labels, predicted), abs=1e-12)
    assert got["recall"] == pytest.approx(metrics.recall_score(labels, predicted), abs=1e-12)
    assert got["f1"] == pytest.approx(metrics.f1_score(labels, predicted), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert got["brier_score"] == pytest.approx(metrics.brier_score_loss(labels, scores), abs=1e-12)
    assert got["log_loss"] == pytest.approx(metrics.log_loss(labels, scores), abs=1e-9)
    assert 0.5 < got["roc_auc"] < 1.0


def test_undefined_metrics_are_nan_not_errors() -> None:
    one_class = quality(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]), np.array([0, 1, 1]))
    assert math.isnan(one_class["roc_auc"])
    assert one_class["recall"] == pytest.approx(2 / 3)
    no_positive_prediction = quality(np.array([0, 1]), np.array([0.1, 0.2]), np.array([0, 0]))
    assert math.isnan(no_positive_prediction["precision"])
    assert no_positive_prediction["accuracy"] == 0.5
    empty = quality(np.array([], dtype=int), np.array([]), np.array([], dtype=int))
    assert all(math.isnan(v) for v in empty.values())
