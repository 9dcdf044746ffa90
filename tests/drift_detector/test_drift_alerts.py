"""The drift alert rules: `promtool check rules` and `promtool test rules` (Debian's prometheus)."""

from __future__ import annotations

from pathlib import Path

from promtool_rules import alerts, alerts_without_firing_test, run
from support import REPO

RULES = REPO / "drift-detector" / "alerts" / "drift.rules.yaml"
UNIT_TESTS = Path(__file__).parent / "promtool" / "drift.rules.test.yaml"


def test_rules_are_valid(promtool: str) -> None:
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


def test_rule_unit_tests_pass(promtool: str) -> None:
    proc = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_unit_test() -> None:
    assert alerts(RULES) == {
        "ModelDriftDetected",
        "ModelDriftPersistent",
        "DriftDetectorDown",
        "DriftDetectorNoEvents",
        "DriftEventsDropped",
        "DriftEventsRejected",
        "DriftEventsUnanswered",
    }
    assert alerts_without_firing_test(RULES, UNIT_TESTS) == set()


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
