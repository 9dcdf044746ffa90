"""The verdict: each threshold, absolute and canary-vs-stable, reported check by check."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rollout.analysis import Metrics, QuerySet, Thresholds, judge

STABLE = Metrics("s", requests=1000, request_rate=16.0, error_rate=0.002, p50=0.002, p99=0.010, drift=0.0)
CANARY = Metrics("c", requests=100, request_rate=1.6, error_rate=0.004, p50=0.002, p99=0.012, drift=0.0)
T = Thresholds(
    min_requests=10,
    max_error_rate=0.01,
    max_error_rate_increase=0.005,
    max_p99=0.5,
    max_p99_ratio=1.5,
    p99_slack=0.005,
)


def test_a_healthy_canary_passes_every_check() -> None:
    v = judge(STABLE, CANARY, T, canary_ready=True)
    assert v.ok and v.reasons == []
    assert [c.name for c in v.checks] == [
        "ready",
        "traffic",
        "error_rate",
        "error_rate_vs_stable",
        "p99",
        "p99_vs_stable",
        "drift",
    ]


@pytest.mark.parametrize(
    ("canary", "ready", "failed", "reason"),
    [
        (replace(CANARY, requests=3), True, ["traffic"], "canary served 3 requests in the window (min 10)"),
        (replace(CANARY, requests=None), True, ["traffic"], "canary served 0 requests"),
        (
            replace(CANARY, error_rate=0.02),
            True,
            ["error_rate", "error_rate_vs_stable"],
            "canary error rate 2.00%",
        ),
        (
            replace(CANARY, error_rate=0.008),
            True,
            ["error_rate_vs_stable"],
            "vs stable 0.20% (max increase 0.50%)",
        ),
        (replace(CANARY, p99=0.6), True, ["p99", "p99_vs_stable"], "canary p99 600.0 ms (max 500.0 ms)"),
        (replace(CANARY, p99=0.021), True, ["p99_vs_stable"], "vs stable 10.0 ms (max 1.5x + 5.0 ms)"),
        (replace(CANARY, drift=1.0), True, ["drift"], "drift detected on canary inputs"),
        (CANARY, False, ["ready"], "canary InferenceService is not Ready"),
    ],
)
def test_each_threshold_fails_the_check(canary: Metrics, ready: bool, failed: list[str], reason: str) -> None:
    v = judge(STABLE, canary, T, canary_ready=ready)
    assert not v.ok
    assert [c.name for c in v.checks if not c.ok] == failed
    assert any(reason in r for r in v.reasons), v.reasons


def test_p99_slack_absorbs_sub_millisecond_noise() -> None:
    fast_stable = replace(STABLE, p99=0.0004)
    assert judge(fast_stable, replace(CANARY, p99=0.003), T).ok  # 7.5x but within 5 ms slack


def test_missing_stable_data_skips_relative_checks_and_drift_can_be_ignored() -> None:
    no_stable = Metrics("s", None, None, None, None, None, None)
    v = judge(no_stable, replace(CANARY, drift=1.0), replace(T, fail_on_drift=False))
    assert v.ok and [c.name for c in v.checks] == ["traffic", "error_rate", "p99"]


def test_queries_use_the_selector_label_prefix_and_window() -> None:
    q = QuerySet(
        label="service",
        metric_prefix="transformer",
        window="30s",
        drift_query='max(drift_detected{inferenceservice="{inferenceservice}", kind="features"})',
    )
    qs = q.queries("m-canary")
    sel = 'service="m-canary",caller!="explainer"'
    assert qs["requests"] == f"sum(increase(transformer_requests_total{{{sel}}}[30s]))"
    assert qs["errors"] == (
        f'sum(increase(transformer_requests_total{{{sel},code!~"[1-4]..|OK|INVALID_ARGUMENT|NOT_FOUND"}}[30s]))'
    )
    assert qs["p99"] == (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(transformer_request_duration_seconds_bucket{{{sel}}}[30s])))"
    )
    assert qs["drift"] == 'max(drift_detected{inferenceservice="m-canary", kind="features"})'
    assert "drift" not in QuerySet(drift_query="").queries("x")
    # {isvc}, the placeholder's older spelling, is still filled in
    older = replace(q, drift_query='max(drift_detected{inferenceservice="{isvc}"})').queries("m-canary")
    assert older["drift"] == 'max(drift_detected{inferenceservice="m-canary"})'


def test_default_queries_use_the_label_vocabulary() -> None:
    """docs/contracts.md "Metric labels": the InferenceService is ``inferenceservice`` on every series."""
    q = QuerySet()
    assert q.label == "inferenceservice"
    assert q.queries("risk-canary")["drift"] == 'max(drift_detected{inferenceservice="risk-canary"})'
    assert q.quality_queries("risk-canary") == {
        "accuracy": 'max(quality_accuracy{inferenceservice="risk-canary"})',
        "labelled": 'max(quality_labelled_predictions{inferenceservice="risk-canary"})',
    }
    assert q.queries("risk-canary")["request_rate"] == (
        'sum(rate(predictor_requests_total{inferenceservice="risk-canary",caller!="explainer"}[1m]))'
    )


@pytest.mark.parametrize(
    ("metric_filter", "selector"),
    [
        (None, 'inferenceservice="x",caller!="explainer"'),  # the default: the explainer's calls left out
        ("", 'inferenceservice="x"'),  # every caller
        ('caller="explainer"', 'inferenceservice="x",caller="explainer"'),  # the explainer's load alone
    ],
)
def test_metric_filter_joins_every_request_query(metric_filter: str | None, selector: str) -> None:
    q = QuerySet() if metric_filter is None else QuerySet(metric_filter=metric_filter)
    qs = q.queries("x")
    assert q.selector("x") == selector
    for name in ("requests", "errors", "request_rate", "p50", "p99"):
        assert "{" + selector + ("}" if name != "errors" else ",code!~") in qs[name], qs[name]
    # {selector} in a custom drift query is the same selector
    custom = replace(q, drift_query="max(up{{selector}})")
    assert custom.queries("x")["drift"] == "max(up{" + selector + "})"
