"""The drift alert rules: `promtool check rules` and `promtool test rules` (Debian's prometheus)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support import REPO

RULES = REPO / "drift-detector" / "alerts" / "drift.rules.yaml"
UNIT_TESTS = Path(__file__).parent / "promtool" / "drift.rules.test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    local = REPO / ".tools" / "bin" / "promtool"
    found = str(local) if os.access(local, os.X_OK) else shutil.which("promtool")
    if found is None:
        message = "promtool not found in .tools/bin or on PATH: run `make tools`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true makes this mandatory)")
        pytest.skip(message)
    return found


def run(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def test_rules_are_valid(promtool: str) -> None:
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


def test_rule_unit_tests_pass(promtool: str) -> None:
    proc = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_unit_test() -> None:
    alerts = {
        r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r
    }
    assert alerts == {
        "ModelDriftDetected",
        "ModelDriftPersistent",
        "DriftDetectorDown",
        "DriftDetectorNoEvents",
        "DriftEventsDropped",
        "DriftEventsRejected",
        "DriftEventsUnanswered",
    }
    tested = {
        case["alertname"]
        for group in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts <= tested, f"alerts without a firing unit test: {sorted(alerts - tested)}"


def test_rules_only_use_metrics_the_detector_exports() -> None:
    metrics = (REPO / "drift-detector" / "drift_detector" / "metrics.py").read_text()
    text = RULES.read_text()
    for name in (
        "drift_detected",
        "drift_windows_drifted_total",
        "drift_windows_evaluated_total",
        "drift_events_received_total",
        "drift_events_dropped_total",
        "drift_events_rejected_total",
        "drift_events_unanswered_total",
    ):
        assert name in text
        assert f'"{name}"' in metrics or f'"{name.removesuffix("_total")}"' in metrics, name
