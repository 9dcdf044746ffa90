"""The chart's VirtualService routes only what clients may reach: inference, metadata, readiness,
health and explanations. Model-repository management, ``/metrics`` and anything else match no
route (Istio answers 404 itself). Checked on every ``ci/`` scenario by evaluating the rendered
routes as Istio does: first route whose any ``match`` entry matches (URI regex fully, headers)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

CHART = REPO / "helm" / "model-serving"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
MODEL = "diabetes-risk"
NEVER_ROUTED = [
    f"/v2/repository/models/{MODEL}/unload",
    f"/v2/repository/models/{MODEL}/load",
    "/v2/repository/index",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/",
    "/v1/models",
    f"/v2/models/{MODEL}/infer/extra",
    f"/v1/models/{MODEL}:unload",
]
ROUTED = [
    f"/v2/models/{MODEL}/infer",
    f"/v2/models/{MODEL}/versions/1/infer",
    f"/v1/models/{MODEL}:predict",
    f"/v2/models/{MODEL}/ready",
    f"/v2/models/{MODEL}",
    f"/v1/models/{MODEL}",
    "/v2/health/ready",
    "/v2/health/live",
    "/v2",
]


def _helm() -> str:
    for candidate in (REPO / ".tools" / "bin" / "helm", shutil.which("helm")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise AssertionError("helm not found in .tools/bin or on PATH: run `make tools`")


def _virtual_service(values: Path) -> dict[str, Any]:
    out = subprocess.run(
        [_helm(), "template", "model-serving", str(CHART), "-f", str(values), "--namespace", "ml"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "VirtualService"]
    assert len(docs) == 1
    return docs[0]


def _matches(match: dict[str, Any], path: str, headers: dict[str, str]) -> bool:
    uri = match.get("uri")
    if uri is not None:
        if "regex" in uri and re.fullmatch(uri["regex"], path) is None:
            return False
        if "exact" in uri and uri["exact"] != path:
            return False
        if "prefix" in uri and not path.startswith(uri["prefix"]):
            return False
    rules = (match.get("headers") or {}).items()
    return all(headers.get(name) == rule.get("exact") for name, rule in rules)


def route_for(vs: dict[str, Any], path: str, headers: dict[str, str]) -> str | None:
    for route in vs["spec"]["http"]:
        matches = route.get("match")
        if not matches or any(_matches(m, path, headers) for m in matches):
            return str(route["name"])
    return None


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_only_serving_paths_are_routed(values: Path) -> None:
    vs = _virtual_service(values)
    for route in vs["spec"]["http"]:
        assert route.get("match"), f"route {route['name']} matches every path"
    for pin in ({}, {"x-model-version": "canary"}, {"x-model-version": "stable"}):
        for path in NEVER_ROUTED:
            assert route_for(vs, path, pin) is None, (values.name, path, pin)
        for path in ROUTED:
            assert route_for(vs, path, pin) is not None, (values.name, path, pin)
    assert route_for(vs, f"/v2/models/{MODEL}/infer", {}) == "primary"
