"""Helpers of the rollout tests: the chart's objects on the fake Kubernetes API, and accessors.

Not in conftest.py: every test folder has a conftest module, so ``from conftest import`` is ambiguous."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from fake_kube_api import FakeKubeAPI

NS = "models"
VS = "diabetes-risk"
STABLE, CANARY = "diabetes-risk-stable", "diabetes-risk-canary"
ISTIO, KSERVE = "networking.istio.io/v1", "serving.kserve.io/v1beta1"


def host(isvc: str) -> str:
    return f"{isvc}-transformer.{NS}.svc.cluster.local"


def primary(vs: dict[str, Any]) -> dict[str, Any]:
    """The weighted route, found by name as the CLI finds it (explain and pin routes come first)."""
    return next(r for r in vs["spec"]["http"] if r["name"] == "primary")


def explainer(isvc: str) -> str:
    return f"{isvc}-explainer.{NS}.svc.cluster.local"


def virtual_service(stable_weight: int = 100, canary_weight: int = 0) -> dict[str, Any]:
    """What the chart renders (docs/contracts.md): explanations per track (canary pin first), then
    header-pinned canary and stable routes, then the weighted primary route, stable first."""
    return {
        "apiVersion": ISTIO,
        "kind": "VirtualService",
        "metadata": {"name": VS, "namespace": NS, "labels": {"app.kubernetes.io/name": "model-serving"}},
        "spec": {
            "hosts": ["diabetes-risk.example.com"],
            "gateways": ["knative-serving/knative-ingress-gateway"],
            "http": [
                {
                    "name": "explain-canary-pin",
                    "match": [
                        {
                            "uri": {"regex": "^/v1/models/[^/]+:explain$"},
                            "headers": {"x-model-version": {"exact": "canary"}},
                        }
                    ],
                    "route": [{"destination": {"host": explainer(CANARY), "port": {"number": 80}}}],
                    "timeout": "30s",
                },
                {
                    "name": "explain",
                    "match": [{"uri": {"regex": "^/v1/models/[^/]+:explain$"}}],
                    "route": [{"destination": {"host": explainer(STABLE), "port": {"number": 80}}}],
                    "timeout": "30s",
                },
                {
                    "name": "canary-pin",
                    "match": [{"headers": {"x-model-version": {"exact": "canary"}}}],
                    "route": [{"destination": {"host": host(CANARY), "port": {"number": 80}}}],
                    "timeout": "30s",
                },
                {
                    "name": "stable-pin",
                    "match": [{"headers": {"x-model-version": {"exact": "stable"}}}],
                    "route": [{"destination": {"host": host(STABLE), "port": {"number": 80}}}],
                    "timeout": "30s",
                },
                {
                    "name": "primary",
                    "route": [
                        {
                            "destination": {"host": host(STABLE), "port": {"number": 80}},
                            "weight": stable_weight,
                        },
                        {
                            "destination": {"host": host(CANARY), "port": {"number": 80}},
                            "weight": canary_weight,
                        },
                    ],
                    "timeout": "30s",
                    "retries": {
                        "attempts": 2,
                        "perTryTimeout": "10s",
                        "retryOn": "5xx,reset,connect-failure",
                    },
                },
            ],
        },
    }


def inference_service(name: str, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": KSERVE,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "onnx"}}}},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    **({} if ready else {"reason": "RevisionMissing", "message": "pods crash-looping"}),
                }
            ]
        },
    }


class Cluster:
    """The fake API seeded like an installed chart, plus accessors the tests assert on."""

    def __init__(self, api: FakeKubeAPI, kubeconfig: Path) -> None:
        self.api, self.kubeconfig = api, kubeconfig

    def seed(self, stable_weight: int = 100, canary_weight: int = 0, canary_ready: bool = True) -> None:
        self.api.put(virtual_service(stable_weight, canary_weight), "virtualservices")
        self.api.put(inference_service(STABLE), "inferenceservices")
        self.api.put(inference_service(CANARY, canary_ready), "inferenceservices")

    def vs(self) -> dict[str, Any]:
        return self.api.get(ISTIO, "virtualservices", NS, VS)

    def weights(self) -> tuple[int, int]:
        route = next(r for r in self.vs()["spec"]["http"] if r["name"] == "primary")["route"]
        return route[0]["weight"], route[1]["weight"]

    def annotation(self, key: str) -> Any:
        raw = self.vs()["metadata"].get("annotations", {}).get(key)
        return None if raw is None else json.loads(raw)

    def edit_vs(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        return self.api.edit(ISTIO, "virtualservices", NS, VS, change)

    def env(self) -> dict[str, str]:
        return {
            "ROLLOUT_KUBECONFIG": str(self.kubeconfig),
            "ROLLOUT_VIRTUAL_SERVICE": VS,
            "ROLLOUT_STABLE": STABLE,
            "ROLLOUT_CANARY": CANARY,
        }


Invoke = Callable[..., Result]
"""``rollout(*args, env=...)``, the ``rollout`` fixture."""
