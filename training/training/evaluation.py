"""Champion vs challenger on the same hold-out: metrics with paired bootstrap confidence intervals.

Both models score the same hold-out rows; each bootstrap resample draws the same rows for both,
so the interval of the *difference* (challenger - champion) is paired. The decision is a
non-inferiority test: the challenger is accepted only when, for every gated metric, the lower
bound of that interval is above ``-margin`` (for ``brier``, lower is better, so the upper bound
must be below ``+margin``) *and* it is not worse on the point estimate. An inconclusive
comparison (too noisy labels, too few rows) is therefore a rejection, never a silent promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["GATED", "Comparison", "compare", "metrics"]

GATED = ("accuracy", "roc_auc")
LOWER_IS_BETTER = frozenset({"brier", "ece"})
ECE_BINS = 10


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    bins = np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    total = 0.0
    for b in range(ECE_BINS):
        sel = bins == b
        if sel.any():
            total += float(sel.mean()) * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return total


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """accuracy, ROC AUC (NaN with one class), Brier score and expected calibration error."""
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "roc_auc": auc,
        "brier": float(np.mean((p - y) ** 2)),
        "ece": _ece(y, p),
    }


@dataclass(frozen=True)
class Comparison:
    champion: dict[str, dict[str, float]]
    challenger: dict[str, dict[str, float]]
    diff: dict[str, dict[str, float]]
    """Per metric: ``value`` (challenger - champion), ``low``, ``high`` (the CI)."""
    accepted: bool
    reasons: list[str]
    settings: dict[str, Any]

    def as_card(self) -> dict[str, Any]:
        return {
            "decision": "accepted" if self.accepted else "rejected",
            "reasons": self.reasons,
            "champion": self.champion,
            "challenger": self.challenger,
            "diff": self.diff,
            **self.settings,
        }


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100.0 - tail))


def compare(
    y: np.ndarray,
    p_champion: np.ndarray,
    p_challenger: np.ndarray,
    *,
    margin: float = 0.01,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 7,
) -> Comparison:
    """Paired bootstrap of every metric and of the differences; the non-inferiority decision."""
    rng = np.random.default_rng(seed)
    n = len(y)
    point_a, point_b = metrics(y, p_champion), metrics(y, p_challenger)
    names = list(point_a)
    draws = {side: {m: np.empty(resamples) for m in names} for side in ("a", "b")}
    for i in range(resamples):
        idx = rng.integers(0, n, size=n)
        ya = y[idx]
        for side, p in (("a", p_champion), ("b", p_challenger)):
            for m, v in metrics(ya, p[idx]).items():
                draws[side][m][i] = v

    def summary(point: dict[str, float], side: str) -> dict[str, dict[str, float]]:
        out = {}
        for m in names:
            low, high = _interval(draws[side][m], level)
            out[m] = {"value": round(point[m], 6), "low": round(low, 6), "high": round(high, 6)}
        return out

    diff: dict[str, dict[str, float]] = {}
    reasons: list[str] = []
    failed = False
    for m in names:
        low, high = _interval(draws["b"][m] - draws["a"][m], level)
        value = point_b[m] - point_a[m]
        diff[m] = {"value": round(value, 6), "low": round(low, 6), "high": round(high, 6)}
        if m not in GATED:
            continue
        worse = -value if m not in LOWER_IS_BETTER else value
        bound = -low if m not in LOWER_IS_BETTER else high
        if not np.isfinite(bound) or worse > 0 or bound > margin:
            failed = True
            reasons.append(
                f"{m}: challenger {point_b[m]:.4f} vs champion {point_a[m]:.4f}, difference "
                f"{value:+.4f} [{low:+.4f}, {high:+.4f}] ({level:.0%} CI); accepting needs a "
                f"difference of at least 0 and a CI bound no worse than {-margin:+g}"
            )
    if not failed:
        reasons = [
            f"{m}: challenger {point_b[m]:.4f} vs champion {point_a[m]:.4f} "
            f"({diff[m]['value']:+.4f} [{diff[m]['low']:+.4f}, {diff[m]['high']:+.4f}])"
            for m in GATED
        ]
    return Comparison(
        champion=summary(point_a, "a"),
        challenger=summary(point_b, "b"),
        diff=diff,
        accepted=not failed,
        reasons=reasons,
        settings={
            "margin": margin,
            "resamples": resamples,
            "level": level,
            "n_holdout": n,
            "gated": list(GATED),
        },
    )
