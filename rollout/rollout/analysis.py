"""Canary analysis: stable and canary metrics from Prometheus, compared with thresholds.

Series of one side are selected by ``{label}="{InferenceService name}"`` (default label
``inferenceservice``, which the chart's PodMonitor relabels the pod label
``serving.kserve.io/inferenceservice`` to; docs/contracts.md "Metric labels"),
plus a filter, by default ``caller!="explainer"``: the explainer's perturbation batches (which the
predictor labels ``caller="explainer"``) are neither client traffic nor client errors and must not
move the verdict; ``!=`` also matches series without the label (transformer metrics, older predictors).
Metrics use the contract names (docs/contracts.md) with a configurable prefix (``predictor``):

* request rate   ``sum(rate(<p>_requests_total{sel}[w]))``
* server errors  ``code!~"[1-4]..|OK|INVALID_ARGUMENT|NOT_FOUND"`` (REST 5xx, gRPC non-OK but client errors)
* p50 / p99      ``histogram_quantile(q, sum by (le) (rate(<p>_request_duration_seconds_bucket{sel}[w])))``
* drift          a configurable query with ``{inferenceservice}`` and ``{selector}`` placeholders
                 (``{isvc}``, the older spelling, is filled in too); by default
                 ``max(drift_detected{inferenceservice="{inferenceservice}"})``: the drift detector
                 labels its ``drift_*`` series with the InferenceService of the payload-logger events, and
                 ``drift_detected`` is 1 when the latest window (features or prediction) drifted
* quality        ``max(quality_accuracy{inferenceservice="{inferenceservice}"})`` and
                 ``max(quality_labelled_predictions{inferenceservice="{inferenceservice}"})``: the
                 feedback store's live accuracy over its window of labelled predictions (the same
                 window for both sides).
                 The gate (``Thresholds.max_accuracy_drop``, off by default) fails when either side has
                 fewer than ``min_labelled`` labelled predictions (no data is not a pass) or the canary's
                 accuracy is more than the drop below the stable's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .prometheus import Prometheus

__all__ = [
    "DEFAULT_DRIFT_QUERY",
    "DEFAULT_LABEL",
    "DEFAULT_LABELLED_QUERY",
    "DEFAULT_METRIC_FILTER",
    "DEFAULT_QUALITY_QUERY",
    "Check",
    "Metrics",
    "QuerySet",
    "Thresholds",
    "Verdict",
    "collect",
    "fill",
    "judge",
    "quality_checks",
]

SERVER_ERROR_CODES = 'code!~"[1-4]..|OK|INVALID_ARGUMENT|NOT_FOUND"'
DEFAULT_LABEL = "inferenceservice"
"""The label naming the InferenceService on every series (docs/contracts.md "Metric labels")."""
DEFAULT_DRIFT_QUERY = 'max(drift_detected{inferenceservice="{inferenceservice}"})'
DEFAULT_METRIC_FILTER = 'caller!="explainer"'
DEFAULT_QUALITY_QUERY = 'max(quality_accuracy{inferenceservice="{inferenceservice}"})'
DEFAULT_LABELLED_QUERY = 'max(quality_labelled_predictions{inferenceservice="{inferenceservice}"})'
PLACEHOLDERS = ("{inferenceservice}", "{isvc}")
"""Where a query template takes the InferenceService name (``{isvc}``: the older spelling)."""


def fill(template: str, inferenceservice: str, selector: str) -> str:
    """A query template with the InferenceService name and the side's selector filled in."""
    for placeholder in PLACEHOLDERS:
        template = template.replace(placeholder, inferenceservice)
    return template.replace("{selector}", selector)


@dataclass(frozen=True)
class QuerySet:
    """How to find one InferenceService's series."""

    label: str = DEFAULT_LABEL
    metric_prefix: str = "predictor"
    window: str = "1m"
    drift_query: str = DEFAULT_DRIFT_QUERY
    metric_filter: str = DEFAULT_METRIC_FILTER
    quality_query: str = DEFAULT_QUALITY_QUERY
    labelled_query: str = DEFAULT_LABELLED_QUERY

    def selector(self, isvc: str) -> str:
        """The label matchers of one side's request series (also ``{selector}`` in the drift query)."""
        side = f'{self.label}="{isvc}"'
        return f"{side},{self.metric_filter}" if self.metric_filter else side

    def queries(self, isvc: str) -> dict[str, str]:
        sel, p, w = self.selector(isvc), self.metric_prefix, self.window
        buckets = f"sum by (le) (rate({p}_request_duration_seconds_bucket{{{sel}}}[{w}]))"
        out = {
            "requests": f"sum(increase({p}_requests_total{{{sel}}}[{w}]))",
            "errors": f"sum(increase({p}_requests_total{{{sel},{SERVER_ERROR_CODES}}}[{w}]))",
            "request_rate": f"sum(rate({p}_requests_total{{{sel}}}[{w}]))",
            "p50": f"histogram_quantile(0.5, {buckets})",
            "p99": f"histogram_quantile(0.99, {buckets})",
        }
        if self.drift_query:
            out["drift"] = fill(self.drift_query, isvc, sel)
        return out

    def quality_queries(self, isvc: str) -> dict[str, str]:
        """The feedback store's live accuracy and labelled count of one side ('' queries skipped)."""
        sel = self.selector(isvc)
        wanted = {"accuracy": self.quality_query, "labelled": self.labelled_query}
        return {k: fill(q, isvc, sel) for k, q in wanted.items() if q}


@dataclass(frozen=True)
class Metrics:
    """One side over the window; None where Prometheus has no data."""

    isvc: str
    requests: float | None
    request_rate: float | None
    error_rate: float | None
    p50: float | None
    p99: float | None
    drift: float | None
    accuracy: float | None = None
    """Live accuracy over the feedback store's window of labelled predictions."""
    labelled: float | None = None
    """Labelled predictions in that window."""

    @property
    def success_rate(self) -> float | None:
        return None if self.error_rate is None else 1.0 - self.error_rate

    @property
    def drifted(self) -> bool | None:
        return None if self.drift is None else self.drift > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success_rate": self.success_rate, "drifted": self.drifted}


def collect(prom: Prometheus, isvc: str, queries: QuerySet) -> Metrics:
    values = {k: prom.scalar(q) for k, q in (queries.queries(isvc) | queries.quality_queries(isvc)).items()}
    requests = values["requests"]
    error_rate = None
    if requests:
        error_rate = min(1.0, (values["errors"] or 0.0) / requests)
    return Metrics(
        isvc=isvc,
        requests=requests,
        request_rate=values["request_rate"],
        error_rate=error_rate,
        p50=values["p50"],
        p99=values["p99"],
        drift=values.get("drift"),
        accuracy=values.get("accuracy"),
        labelled=values.get("labelled"),
    )


@dataclass(frozen=True)
class Thresholds:
    """When a canary check fails. Each limit is documented on its CLI option."""

    min_requests: float = 10
    max_error_rate: float = 0.01
    max_error_rate_increase: float = 0.01
    max_p99: float = 1.0
    max_p99_ratio: float = 1.5
    p99_slack: float = 0.025
    fail_on_drift: bool = True
    max_accuracy_drop: float | None = None
    """Quality gate: highest stable accuracy minus canary accuracy; ``None`` leaves the gate off."""
    min_labelled: float = 100
    """Labelled predictions each side needs in the quality window for the gate to pass."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c.detail for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": self.reasons, "checks": [asdict(c) for c in self.checks]}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _ms(x: float) -> str:
    return f"{1000 * x:.1f} ms"


def judge(stable: Metrics, canary: Metrics, t: Thresholds, canary_ready: bool | None = None) -> Verdict:
    """Compare the canary with absolute limits and with the stable; every check is reported."""
    checks: list[Check] = []
    if canary_ready is not None:
        checks.append(
            Check(
                "ready",
                canary_ready,
                "canary InferenceService is " + ("Ready" if canary_ready else "not Ready"),
            )
        )
    n = canary.requests or 0.0
    enough = n >= t.min_requests
    checks.append(
        Check("traffic", enough, f"canary served {n:.0f} requests in the window (min {t.min_requests:.0f})")
    )
    if enough and canary.error_rate is not None:
        er = canary.error_rate
        checks.append(
            Check(
                "error_rate",
                er <= t.max_error_rate,
                f"canary error rate {_pct(er)} (max {_pct(t.max_error_rate)})",
            )
        )
        if stable.error_rate is not None:
            diff = er - stable.error_rate
            checks.append(
                Check(
                    "error_rate_vs_stable",
                    diff <= t.max_error_rate_increase,
                    f"canary error rate {_pct(er)} vs stable {_pct(stable.error_rate)} "
                    f"(max increase {_pct(t.max_error_rate_increase)})",
                )
            )
    if enough and canary.p99 is not None:
        p99 = canary.p99
        checks.append(Check("p99", p99 <= t.max_p99, f"canary p99 {_ms(p99)} (max {_ms(t.max_p99)})"))
        if stable.p99 is not None:
            limit = stable.p99 * t.max_p99_ratio + t.p99_slack
            checks.append(
                Check(
                    "p99_vs_stable",
                    p99 <= limit,
                    f"canary p99 {_ms(p99)} vs stable {_ms(stable.p99)} "
                    f"(max {t.max_p99_ratio:g}x + {_ms(t.p99_slack)})",
                )
            )
    if t.fail_on_drift and canary.drifted is not None:
        checks.append(
            Check(
                "drift",
                not canary.drifted,
                "drift detected on canary inputs" if canary.drifted else "no drift on canary inputs",
            )
        )
    if t.max_accuracy_drop is not None:
        checks.extend(quality_checks(stable, canary, t.max_accuracy_drop, t.min_labelled))
    return Verdict(all(c.ok for c in checks), checks)


def quality_checks(stable: Metrics, canary: Metrics, max_drop: float, min_labelled: float) -> list[Check]:
    """The quality gate: enough labelled predictions on both sides, then canary accuracy vs stable."""
    counts = {"stable": stable.labelled or 0.0, "canary": canary.labelled or 0.0}
    short = [f"{side} {n:.0f}" for side, n in counts.items() if n < min_labelled]
    detail = (
        f"labelled predictions: stable {counts['stable']:.0f}, canary {counts['canary']:.0f} "
        f"(min {min_labelled:.0f} each)"
    )
    checks = [Check("labelled", not short, detail)]
    if short:
        return checks
    if stable.accuracy is None or canary.accuracy is None:
        checks.append(
            Check(
                "accuracy_vs_stable",
                False,
                "no live accuracy for "
                + ("stable" if stable.accuracy is None else "canary")
                + " (is the feedback store scraped?)",
            )
        )
        return checks
    drop = stable.accuracy - canary.accuracy
    checks.append(
        Check(
            "accuracy_vs_stable",
            drop <= max_drop,
            f"canary accuracy {_pct(canary.accuracy)} vs stable {_pct(stable.accuracy)} "
            f"(max drop {_pct(max_drop)})",
        )
    )
    return checks
