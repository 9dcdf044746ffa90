"""The alert rules pass `promtool check rules` and their unit tests, and the chart wraps them as they are."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import CHART, REPO, by_kind

RULE_FILES = sorted((CHART / "files" / "alerts").glob("*.yaml")) + sorted(
    (REPO / "drift-detector" / "alerts").glob("*.yaml")
)
UNIT_TESTS = sorted((Path(__file__).parent / "promtool").glob("*.test.yaml"))


def _promtool(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.relative_to(REPO).as_posix() for p in RULE_FILES])
def test_check_rules(promtool: str, path: Path) -> None:
    proc = _promtool(promtool, "check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("path", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_rule_unit_tests(promtool: str, path: Path) -> None:
    proc = _promtool(promtool, "test", "rules", path.name, cwd=path.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_unit_tests_cover_every_alert() -> None:
    rules = yaml.safe_load((CHART / "files" / "alerts" / "serving.rules.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested = {
        case["alertname"]
        for path in UNIT_TESTS
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts <= tested, f"alerts without a firing unit test: {sorted(alerts - tested)}"


def test_prometheus_rule_is_the_rule_files(
    default_docs: list[dict[str, Any]], promtool: str, tmp_path: Path
) -> None:
    (rule,) = by_kind(default_docs, "PrometheusRule")
    expected = [
        g
        for p in sorted((CHART / "files" / "alerts").glob("*.yaml"))
        for g in yaml.safe_load(p.read_text())["groups"]
    ]
    assert rule["spec"]["groups"] == expected
    wrapped = tmp_path / "wrapped.rules.yaml"
    wrapped.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    proc = _promtool(promtool, "check", "rules", str(wrapped))
    assert proc.returncode == 0, proc.stdout + proc.stderr


PREDICTOR_REQUEST_SERIES = re.compile(
    r"predictor_request(?:s_total|_duration_seconds(?:_bucket|_sum|_count)?)\b(\{[^}]*\})?"
)


def _request_selectors(expr: str) -> list[str]:
    return [m.group(1) or "" for m in PREDICTOR_REQUEST_SERIES.finditer(expr)]


def _serving_exprs() -> dict[str, str]:
    rules = yaml.safe_load((CHART / "files" / "alerts" / "serving.rules.yaml").read_text())
    return {r.get("record") or r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def _dashboard_exprs() -> dict[str, str]:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    return {f"{p['title']} {t['refId']}": t["expr"] for p in dashboard["panels"] for t in p["targets"]}


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_client_traffic_selects_caller_not_explainer(source: str) -> None:
    """Every serving rule and dashboard query on the predictor's request metrics leaves the
    explainer's calls out (`caller!="explainer"`, which also matches series without the label);
    only the explainer's own recording rule selects them."""
    exprs = _serving_exprs() if source == "rules" else _dashboard_exprs()
    explainer_only = {"model_serving:predictor_explainer_requests:rate5m"}
    seen = 0
    for name, expr in exprs.items():
        for selector in _request_selectors(expr):
            seen += 1
            wanted = 'caller="explainer"' if name in explainer_only else 'caller!="explainer"'
            assert wanted in selector, f"{name}: {expr}"
    assert seen >= (5 if source == "rules" else 0)
    if source == "dashboard":  # client panels read the recording rules, the explainer's load its own
        used = " ".join(exprs.values())
        assert "model_serving:predictor_requests:rate5m" in used
        assert "model_serving:predictor_explainer_requests:rate5m" in used
