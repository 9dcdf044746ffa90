"""Canary analysis: stable and canary metrics from Prometheus, compared with thresholds.

Series of one side are selected by ``{label}="{InferenceService name}"`` (default label ``isvc``,
which the chart's PodMonitor relabels the pod label ``serving.kserve.io/inferenceservice`` to),
plus a filter, by default ``caller!="explainer"``: the explainer's perturbation batches (which the
predictor labels ``caller="explainer"``) are neither client traffic nor client errors and must not
move the verdict; ``!=`` also matches series without the label (transformer metrics, older predictors).
Metrics use the contract names (docs/contracts.md) with a configurable prefix (``predictor``):

* request rate   ``sum(rate(<p>_requests_total{sel}[w]))``
* server errors  ``code!~"[1-4]..|OK|INVALID_ARGUMENT|NOT_FOUND"`` (REST 5xx, gRPC non-OK but client errors)
* p50 / p99      ``histogram_quantile(q, sum by (le) (rate(<p>_request_duration_seconds_bucket{sel}[w])))``
* drift          a configurable query with ``{isvc}`` and ``{selector}`` placeholders; by default
                 ``max(drift_detected{inferenceservice="{isvc}"})``: the drift detector labels its
                 ``drift_*`` series with the InferenceService of the payload-logger events, and
                 ``drift_detected`` is 1 when the latest window (features or prediction) drifted
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .prometheus import Prometheus

__all__ = [
    "DEFAULT_DRIFT_QUERY",
    "DEFAULT_METRIC_FILTER",
    "Check",
    "Metrics",
    "QuerySet",
    "Thresholds",
    "Verdict",
    "collect",
    "judge",
]

SERVER_ERROR_CODES = 'code!~"[1-4]..|OK|INVALID_ARGUMENT|NOT_FOUND"'
DEFAULT_DRIFT_QUERY = 'max(drift_detected{inferenceservice="{isvc}"})'
DEFAULT_METRIC_FILTER = 'caller!="explainer"'


@dataclass(frozen=True)
class QuerySet:
    """How to find one InferenceService's series."""

    label: str = "isvc"
    metric_prefix: str = "predictor"
    window: str = "1m"
    drift_query: str = DEFAULT_DRIFT_QUERY
    metric_filter: str = DEFAULT_METRIC_FILTER

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
            out["drift"] = self.drift_query.replace("{isvc}", isvc).replace("{selector}", sel)
        return out


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

    @property
    def success_rate(self) -> float | None:
        return None if self.error_rate is None else 1.0 - self.error_rate

    @property
    def drifted(self) -> bool | None:
        return None if self.drift is None else self.drift > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success_rate": self.success_rate, "drifted": self.drifted}


def collect(prom: Prometheus, isvc: str, queries: QuerySet) -> Metrics:
    values = {k: prom.scalar(q) for k, q in queries.queries(isvc).items()}
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
    return Verdict(all(c.ok for c in checks), checks)
