"""The quality alert rules: `promtool check rules` and `promtool test rules` (Debian's prometheus)."""

from __future__ import annotations

from pathlib import Path

from promtool_rules import alerts_without_firing_test, run
from support import REPO

RULES = REPO / "drift-detector" / "alerts" / "quality.rules.yaml"
UNIT_TESTS = Path(__file__).parent / "promtool" / "quality.rules.test.yaml"


def test_rules_are_valid(promtool: str) -> None:
    proc = run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout


def test_rules_unit_tests_pass(promtool: str) -> None:
    proc = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_unit_test() -> None:
    assert alerts_without_firing_test(RULES, UNIT_TESTS) == set()
