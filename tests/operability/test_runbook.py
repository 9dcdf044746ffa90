"""Issue 16 (6): every alert has a runbook_url pointing at a section of docs/runbook.md that says
what it means, how to check and what to do; the chart prefixes it with monitoring.runbookBaseUrl."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from support import REPO

RULE_FILES = [
    REPO / "helm/model-serving/files/alerts/serving.rules.yaml",
    REPO / "helm/model-serving/files/alerts/drift-detector.drift.rules.yaml",
    REPO / "drift-detector/alerts/drift.rules.yaml",
]


def _alerts(path: Path) -> list[dict[str, object]]:
    doc = yaml.safe_load(path.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _sections() -> dict[str, str]:
    text = (REPO / "docs/runbook.md").read_text()
    parts = re.split(r"^## (\w+)\s*$", text, flags=re.MULTILINE)
    return {parts[i].lower(): parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_links_its_runbook_section(path: Path) -> None:
    sections = _sections()
    alerts = _alerts(path)
    assert alerts
    for rule in alerts:
        name = str(rule["alert"])
        url = rule["annotations"]["runbook_url"]  # type: ignore[index]
        assert url == f"docs/runbook.md#{name.lower()}", (name, url)
        body = sections.get(name.lower())
        assert body is not None, f"docs/runbook.md has no section '## {name}'"
        for part in ("**What it means.**", "**How to check.**", "**What to do.**"):
            assert part in body, f"{name}: runbook section lacks {part}"


def test_runbook_has_no_section_without_an_alert() -> None:
    names = {str(r["alert"]).lower() for p in RULE_FILES for r in _alerts(p)}
    assert set(_sections()) == names


def _rendered_urls(*args: str) -> list[str]:
    out = subprocess.run(
        ["helm", "template", "r", str(REPO / "helm/model-serving"), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return re.findall(r"runbook_url: (\S+)", out)


def test_chart_prefixes_runbook_urls_with_the_base_url() -> None:
    names = {str(r["alert"]).lower() for p in RULE_FILES[:2] for r in _alerts(p)}
    plain = _rendered_urls()
    assert sorted(u.split("#")[1] for u in plain) == sorted(names)
    assert all(u.startswith("docs/runbook.md#") for u in plain)
    based = _rendered_urls(
        "--set", "monitoring.runbookBaseUrl=https://git.example.com/org/model-serving/-/blob/main/"
    )
    assert len(based) == len(plain)
    assert all(
        u.startswith("https://git.example.com/org/model-serving/-/blob/main/docs/runbook.md#") for u in based
    )
    bad = subprocess.run(
        [
            "helm",
            "template",
            "r",
            str(REPO / "helm/model-serving"),
            "--set",
            "monitoring.runbookBaseUrl=not a url",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert bad.returncode != 0 and "runbookBaseUrl" in bad.stderr
