"""Render manifests/ from the chart's defaults: the plain-YAML install for users without Helm.

    python tests/tools/render_manifests.py            # write manifests/base/ (make manifests)
    python tests/tools/render_manifests.py --check    # exit 1 when manifests/ drifted from the chart

Also copies the drift detector's alert rules (drift-detector/alerts/*.yaml) into the chart
(helm/model-serving/files/alerts/drift-detector.*.yaml), since Helm reads only files inside the
chart. One resource per file, named ``<kind>-<name>.yaml``; ``kustomization.yaml`` lists them.
The helm-only parts are left out: the test hook pod, and ``helm.sh/chart`` /
``managed-by: Helm`` labels.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "model-serving"
BASE = REPO / "manifests" / "base"
DRIFT_ALERTS = REPO / "drift-detector" / "alerts"
CHART_ALERTS = CHART / "files" / "alerts"
RELEASE = NAMESPACE = "model-serving"
HEADER = "# Rendered from helm/model-serving with its default values by `make manifests`; do not edit.\n"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(doc: dict[str, Any]) -> str:
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=110)


def helm_binary() -> str:
    local = REPO / ".tools" / "bin" / "helm"
    found = str(local) if os.access(local, os.X_OK) else shutil.which("helm")
    if not found:
        sys.exit("helm not found: run `make tools`")
    return found


def drift_alert_copies() -> dict[Path, str]:
    """Chart copy path -> content for every drift-detector/alerts/*.yaml."""
    return {
        CHART_ALERTS / f"drift-detector.{p.name}": p.read_text() for p in sorted(DRIFT_ALERTS.glob("*.yaml"))
    }


def render(helm: str) -> dict[str, str]:
    """File name -> content of every manifest in manifests/base/."""
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--skip-tests"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    files: dict[str, str] = {}
    for doc in yaml.safe_load_all(out):
        if not doc:
            continue
        labels = doc["metadata"].get("labels", {})
        labels.pop("helm.sh/chart", None)
        if labels.get("app.kubernetes.io/managed-by") == "Helm":
            labels["app.kubernetes.io/managed-by"] = "kustomize"
        for template in _pod_template_metadata(doc):
            template.get("labels", {}).pop("helm.sh/chart", None)
            if template.get("labels", {}).get("app.kubernetes.io/managed-by") == "Helm":
                template["labels"]["app.kubernetes.io/managed-by"] = "kustomize"
        name = f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        assert name not in files, f"two resources render to {name}"
        files[name] = dump(doc)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = dump(kustomization)
    return files


def _pod_template_metadata(doc: dict[str, Any]) -> list[dict[str, Any]]:
    template = doc.get("spec", {}).get("template", {})
    return [template["metadata"]] if isinstance(template, dict) and "metadata" in template else []


def check(helm: str) -> list[str]:
    """What differs between the repository and a fresh render (empty when in sync)."""
    problems = []
    for path, content in drift_alert_copies().items():
        if not path.exists() or path.read_text() != content:
            problems.append(
                f"{path.relative_to(REPO)} differs from drift-detector/alerts/{path.name.split('.', 1)[1]}"
            )
    for path in CHART_ALERTS.glob("drift-detector.*.yaml"):
        if path not in drift_alert_copies():
            problems.append(f"{path.relative_to(REPO)} has no source in drift-detector/alerts/")
    expected = render(helm)
    actual = {p.name: p.read_text() for p in BASE.glob("*.yaml")} if BASE.is_dir() else {}
    for name in sorted(expected.keys() | actual.keys()):
        if expected.get(name) != actual.get(name):
            diff = difflib.unified_diff(
                actual.get(name, "").splitlines(), expected.get(name, "").splitlines(),
                f"manifests/base/{name}", f"rendered {name}", lineterm="", n=1,
            )  # fmt: skip
            problems.append("\n".join(list(diff)[:30]))
    return problems


def write(helm: str) -> None:
    CHART_ALERTS.mkdir(parents=True, exist_ok=True)
    for path in CHART_ALERTS.glob("drift-detector.*.yaml"):
        path.unlink()
    for path, content in drift_alert_copies().items():
        path.write_text(content)
    files = render(helm)
    if BASE.exists():
        shutil.rmtree(BASE)
    BASE.mkdir(parents=True)
    for name, content in files.items():
        (BASE / name).write_text(content)
    print(f"wrote {len(files)} files to {BASE.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args()
    helm = helm_binary()
    if args.check:
        problems = check(helm)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    write(helm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
