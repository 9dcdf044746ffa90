"""Alert rules under promtool (Debian's prometheus): finding it, running it, and the check that
every alert a rules file defines has a unit test in which it fires."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml
from support import REPO


def find_promtool() -> str | None:
    """``.tools/bin/promtool`` (``make tools``), else the one on ``PATH``."""
    local = REPO / ".tools" / "bin" / "promtool"
    return str(local) if os.access(local, os.X_OK) else shutil.which("promtool")


def run(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def alerts(rules: Path) -> set[str]:
    """The alert names a rules file defines."""
    return {
        r["alert"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"] if "alert" in r
    }


def alerts_without_firing_test(rules: Path, unit_tests: Path) -> set[str]:
    """Alerts of ``rules`` that no ``alert_rule_test`` of ``unit_tests`` expects to fire."""
    tested = {
        case["alertname"]
        for group in yaml.safe_load(unit_tests.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    return alerts(rules) - tested
