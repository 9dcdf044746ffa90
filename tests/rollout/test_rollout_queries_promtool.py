"""The analysis' own PromQL, evaluated by Prometheus' engine (``promtool test rules``) on series
where the explainer's calls (``caller="explainer"``) fail and are slow: they move no number of
the analysis, while client series, with or without the ``caller`` label, all count."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool_rules import find_promtool
from rollout.analysis import Metrics, QuerySet, Thresholds, judge

STABLE, CANARY, OLD = "m-stable", "m-canary", "m-old"
PER_MINUTE = 60  # requests per minute of each series below: rates of exactly 1/s

# (isvc, caller or None, code, bucket the requests fall in (seconds))
SERIES = [
    (STABLE, "client", "OK", 0.1),
    (STABLE, "explainer", "OK", 2.0),  # 1024-row perturbation batches: slow
    (STABLE, "explainer", "INTERNAL", 2.0),
    (CANARY, "client", "200", 0.1),
    (CANARY, "explainer", "500", 2.0),
    (CANARY, "explainer", "UNAVAILABLE", 2.0),
    (OLD, None, "200", 0.1),  # a predictor without the caller label: still client traffic
    (OLD, None, "500", 0.1),
]
BUCKETS = (0.1, 2.0, "+Inf")


def _promtool() -> str:
    found = find_promtool()
    if found is None:
        pytest.fail("promtool is needed (`make tools` links it into .tools/bin)")
    return found


def _labels(isvc: str, caller: str | None) -> str:
    return f'inferenceservice="{isvc}"' + (f', caller="{caller}"' if caller else "")


def _input_series() -> list[dict[str, str]]:
    """One counter per SERIES row; one histogram per (isvc, caller), as the predictor has them."""
    out = [
        {
            "series": f'predictor_requests_total{{{_labels(isvc, caller)}, code="{code}"}}',
            "values": f"0+{PER_MINUTE}x30",
        }
        for isvc, caller, code, _ in SERIES
    ]
    histograms: dict[tuple[str, str | None], dict[str, int]] = {}
    for isvc, caller, _, bucket in SERIES:
        counts = histograms.setdefault((isvc, caller), dict.fromkeys(map(str, BUCKETS), 0))
        for le in BUCKETS:
            if le == "+Inf" or float(le) >= bucket:
                counts[str(le)] += PER_MINUTE
    for (isvc, caller), counts in histograms.items():
        out += [
            {
                "series": f'predictor_request_duration_seconds_bucket{{{_labels(isvc, caller)}, le="{le}"}}',
                "values": f"0+{n}x30",
            }
            for le, n in counts.items()
        ]
    return out


def _expected(isvc: str, queries: QuerySet) -> dict[str, float | None]:
    """What each query must return at 20m over a 5m window, from SERIES alone."""
    picked = [s for s in SERIES if s[0] == isvc and (not queries.metric_filter or s[1] != "explainer")]
    n = len(picked)
    errors = sum(1 for s in picked if s[2] not in ("OK", "200"))
    # all picked requests fast -> quantiles inside the first bucket (0, 0.1]; else inside (0.1, 2]
    fast = all(s[3] == 0.1 for s in picked)
    slow_share = sum(1 for s in picked if s[3] == 2.0) / n

    def quantile(q: float) -> float:
        if fast:
            return 0.1 * q
        rank = q * n - (n - n * slow_share)  # rank inside the slow bucket
        return 0.1 + 1.9 * rank / (n * slow_share) if rank > 0 else 0.1 * q / (1 - slow_share)

    return {
        "requests": 5.0 * PER_MINUTE * n,
        "errors": 5.0 * PER_MINUTE * errors if errors else None,
        "request_rate": PER_MINUTE / 60 * n,
        "p50": quantile(0.5),
        "p99": quantile(0.99),
    }


def _run(tmp_path: Path, queries: QuerySet) -> dict[str, dict[str, float | None]]:
    tests: list[dict[str, Any]] = []
    expected = {isvc: _expected(isvc, queries) for isvc in (STABLE, CANARY, OLD)}
    for isvc, values in expected.items():
        for name, expr in queries.queries(isvc).items():
            if name == "drift":
                continue
            value = values[name]
            samples = [] if value is None else [{"labels": "{}", "value": value}]
            tests.append({"expr": expr, "eval_time": "20m", "exp_samples": samples})
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": _input_series(), "promql_expr_test": tests}],
    }
    path = tmp_path / "queries.test.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = subprocess.run(
        [_promtool(), "test", "rules", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    return expected


def test_explainer_calls_move_no_number_of_the_analysis(tmp_path: Path) -> None:
    expected = _run(tmp_path, QuerySet(window="5m", drift_query=""))
    # stable and canary: only the client series count, clean and fast
    for isvc in (STABLE, CANARY):
        assert expected[isvc] == {
            "requests": 300.0,
            "errors": None,
            "request_rate": 1.0,
            "p50": 0.05,
            "p99": pytest.approx(0.099),
        }
    # series without the label keep matching caller!="explainer"
    assert expected[OLD]["requests"] == 600.0 and expected[OLD]["errors"] == 300.0


def test_without_the_filter_the_same_series_would_fail_the_canary(tmp_path: Path) -> None:
    """The data really carries failing, slow explainer calls: unfiltered, the canary's error rate
    is 2/3 and its p99 ~2 s, and the verdict fails; filtered, it passes."""
    unfiltered = _run(tmp_path, QuerySet(window="5m", drift_query="", metric_filter=""))
    filtered = _expected(CANARY, QuerySet(window="5m"))

    def metrics(isvc: str, v: dict[str, float | None]) -> Metrics:
        requests = v["requests"]
        assert requests
        return Metrics(
            isvc, requests, v["request_rate"], (v["errors"] or 0) / requests, v["p50"], v["p99"], None
        )

    assert unfiltered[CANARY]["errors"] == 600.0 and (unfiltered[CANARY]["p99"] or 0) > 1.9
    t = Thresholds()
    bad = judge(metrics(STABLE, unfiltered[STABLE]), metrics(CANARY, unfiltered[CANARY]), t)
    assert not bad.ok and "error_rate" in [c.name for c in bad.checks if not c.ok]
    good = judge(metrics(STABLE, _expected(STABLE, QuerySet())), metrics(CANARY, filtered), t)
    assert good.ok, good.reasons
