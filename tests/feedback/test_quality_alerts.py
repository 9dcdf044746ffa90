"""The quality alert rules: `promtool check rules` and `promtool test rules` (Debian's prometheus)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import REPO

RULES = REPO / "drift-detector" / "alerts" / "quality.rules.yaml"
UNIT_TESTS = Path(__file__).parent / "promtool" / "quality.rules.test.yaml"


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
    assert "SUCCESS: 6 rules found" in proc.stdout


def test_rules_unit_tests_pass(promtool: str) -> None:
    proc = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
