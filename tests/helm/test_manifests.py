"""manifests/ is the chart's default render, and its kustomize overlay only moves the weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chart_support import REPO, Helm, by_kind, find_tool, parse_documents, validate_all

RENDER = REPO / "tests" / "tools" / "render_manifests.py"
OVERLAY = REPO / "manifests" / "overlays" / "canary-50"


def test_manifests_match_the_chart(helm: Helm) -> None:
    proc = subprocess.run(
        [sys.executable, str(RENDER), "--check"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"manifests/ drifted from the chart; run `make manifests`:\n{proc.stderr}"


def test_base_is_one_resource_per_file() -> None:
    base = REPO / "manifests" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    files = sorted(p.name for p in base.glob("*.yaml") if p.name != "kustomization.yaml")
    assert kustomization["resources"] == files
    for name in files:
        (doc,) = parse_documents((base / name).read_text())
        assert name == f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"


@pytest.fixture(scope="module")
def overlay_docs() -> list[dict]:
    kubectl = find_tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not found: run `make tools`")
    proc = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return parse_documents(proc.stdout)


def test_overlay_sets_canary_weights(overlay_docs: list[dict]) -> None:
    (vs,) = by_kind(overlay_docs, "VirtualService")
    (primary,) = [r for r in vs["spec"]["http"] if r["name"] == "primary"]
    weights = {d["destination"]["host"].split(".")[0]: d["weight"] for d in primary["route"]}
    assert weights == {"model-serving-stable-transformer": 50, "model-serving-canary-transformer": 50}


def test_overlay_changes_nothing_else(overlay_docs: list[dict]) -> None:
    base_dir = REPO / "manifests" / "base"
    base = {
        (d["kind"], d["metadata"]["name"]): d
        for p in base_dir.glob("*-*.yaml")
        for d in parse_documents(p.read_text())
    }
    overlay = {(d["kind"], d["metadata"]["name"]): d for d in overlay_docs}
    assert overlay.keys() == base.keys()
    changed = [k for k in base if base[k] != overlay[k]]
    assert changed == [("VirtualService", "model-serving")]


def test_overlay_documents_match_schemas(overlay_docs: list[dict], crds_dir: Path) -> None:
    problems = validate_all(overlay_docs, crds_dir)
    assert not problems, "\n".join(map(str, problems))
