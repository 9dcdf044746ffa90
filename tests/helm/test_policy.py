"""checkov (pinned, installed into .tools/ by `make tools`) over every ci/ scenario render: every
finding is either fixed or accepted, with its reason, in checkov-baseline.yaml."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from chart_support import CI_SCENARIOS, Helm, find_tool, in_ci

BASELINE = Path(__file__).resolve().parent / "checkov-baseline.yaml"


@pytest.fixture(scope="module")
def findings(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """check id -> kinds it fails on, over every scenario."""
    checkov = find_tool("checkov")
    if checkov is None:  # mandatory in CI, visibly skipped elsewhere (as helm and promtool are)
        message = "checkov not found in .tools/bin: run `make tools`"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    assert checkov is not None
    out = tmp_path_factory.mktemp("renders")
    for values in CI_SCENARIOS:
        proc = helm.run(
            "template", "model-serving", str(values.parents[1]), "-n", "model-serving", "-f", str(values)
        )
        (out / f"{values.name.removesuffix('-values.yaml')}.yaml").write_text(proc.stdout)
    # --skip-download: offline, nothing leaves the machine
    proc = subprocess.run(
        [checkov, "-d", str(out), "--framework", "kubernetes", "-o", "json", "--quiet", "--skip-download"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = reports
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] >= 10 * len(CI_SCENARIOS)  # it did scan the renders
    found: dict[str, set[str]] = defaultdict(set)
    for failure in report["results"]["failed_checks"]:
        found[failure["check_id"]].add(failure["resource"].split(".")[0])
    return found


def _accepted() -> dict[str, set[str]]:
    entries = yaml.safe_load(BASELINE.read_text())["accepted"]
    assert all(e.get("reason") for e in entries), "every accepted finding needs its reason"
    return {e["check"]: set(e["kinds"]) for e in entries}


def test_every_finding_is_fixed_or_accepted(findings: dict[str, set[str]]) -> None:
    accepted = _accepted()
    new = {check: kinds - accepted.get(check, set()) for check, kinds in findings.items()}
    new = {check: kinds for check, kinds in new.items() if kinds}
    assert not new, f"new checkov findings (fix them, or accept them with a reason in {BASELINE.name}): {new}"


def test_baseline_has_no_stale_entries(findings: dict[str, set[str]]) -> None:
    stale = {check: kinds - findings.get(check, set()) for check, kinds in _accepted().items()}
    stale = {check: kinds for check, kinds in stale.items() if kinds}
    assert not stale, f"accepted in {BASELINE.name} but no longer found (remove them): {stale}"
