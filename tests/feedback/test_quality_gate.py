"""The rollout analysis's quality gate: enough labelled predictions per side, then accuracy vs stable."""

from __future__ import annotations

import pytest
from rollout.analysis import Metrics, QuerySet, Thresholds, judge


def side(isvc: str, accuracy: float | None, labelled: float | None) -> Metrics:
    return Metrics(isvc, 600.0, 10.0, 0.0, 0.01, 0.02, 0.0, accuracy=accuracy, labelled=labelled)


GATE = Thresholds(max_accuracy_drop=0.02, min_labelled=100)


def checks(stable: Metrics, canary: Metrics, t: Thresholds = GATE) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in judge(stable, canary, t).checks}


def test_a_canary_within_the_drop_passes() -> None:
    verdict = judge(side("s", 0.74, 500), side("c", 0.73, 120), GATE)
    assert verdict.ok, verdict.reasons
    got = checks(side("s", 0.74, 500), side("c", 0.73, 120))
    assert got["accuracy_vs_stable"] == (True, "canary accuracy 73.00% vs stable 74.00% (max drop 2.00%)")
    assert got["labelled"] == (True, "labelled predictions: stable 500, canary 120 (min 100 each)")


def test_a_worse_canary_fails() -> None:
    verdict = judge(side("s", 0.74, 500), side("c", 0.68, 500), GATE)
    assert not verdict.ok
    assert verdict.reasons == ["canary accuracy 68.00% vs stable 74.00% (max drop 2.00%)"]


@pytest.mark.parametrize(
    ("stable", "canary", "reason"),
    [
        (
            side("s", 0.74, 500),
            side("c", None, None),
            "labelled predictions: stable 500, canary 0 (min 100 each)",
        ),
        (
            side("s", 0.74, 99),
            side("c", 0.9, 500),
            "labelled predictions: stable 99, canary 500 (min 100 each)",
        ),
        (
            side("s", None, 500),
            side("c", 0.9, 500),
            "no live accuracy for stable (is the feedback store scraped?)",
        ),
    ],
)
def test_no_data_is_not_a_pass(stable: Metrics, canary: Metrics, reason: str) -> None:
    verdict = judge(stable, canary, GATE)
    assert not verdict.ok
    assert verdict.reasons == [reason]


def test_the_gate_is_off_unless_asked_for() -> None:
    verdict = judge(side("s", 0.9, 500), side("c", 0.1, 0), Thresholds())
    assert verdict.ok
    assert "accuracy_vs_stable" not in {c.name for c in verdict.checks}


def test_quality_queries_select_the_inference_service() -> None:
    assert QuerySet().quality_queries("risk-canary") == {
        "accuracy": 'max(quality_accuracy{inferenceservice="risk-canary"})',
        "labelled": 'max(quality_labelled_predictions{inferenceservice="risk-canary"})',
    }
    assert QuerySet(quality_query="", labelled_query="").quality_queries("x") == {}
    assert "accuracy" not in QuerySet().queries("x")  # the serving queries are unchanged
