"""The `helm test` pod's script, as rendered, against the real predictor, transformer and
explainer behind the rendered VirtualService's routes: it makes one real inference and one real
explanation through the entry host, and stops its sidecar whether it passes or fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chart_support import Helm, by_kind
from mesh_router import MeshRouter, PilotAgent
from model_stack import Server, component, started_together
from support import free_port

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    predictor: Server
    transformer: Server
    explainer: Server


@pytest.fixture(scope="module")
def stack(gbm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The chart's wiring on loopback: transformer -> predictor (REST V2), explainer -> predictor (gRPC)."""
    logs = tmp_path_factory.mktemp("logs")
    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = component("predictor", bundle, logs / "predictor.log")
    hop = ["--predictor_protocol"]
    transformer = component(
        "transformer",
        [*bundle, "--predictor_host", f"127.0.0.1:{predictor.http_port}", *hop, "v2"],
        logs / "transformer.log",
    )
    explainer = component(
        "explainer",
        [*bundle, "--predictor_host", f"127.0.0.1:{predictor.grpc_port}", *hop, "grpc-v2"],
        logs / "explainer.log",
        ready_timeout=120.0,
    )
    servers = [predictor, transformer, explainer]
    with started_together(servers):
        yield Stack(predictor, transformer, explainer)


def _test_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (pod,) = [p for p in by_kind(docs, "Pod") if p["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    return pod


def _run(script: str, router: MeshRouter, agent: PilotAgent) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEST_BASE_URL": router.url, "TEST_SIDECAR_URL": agent.url}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240, check=False
    )


def _backends(stack: Stack, explainer_url: str | None = None) -> dict[str, str]:
    """Both tracks' Services -> the local processes (one bundle serves both tracks here)."""
    out = {}
    for track in ("stable", "canary"):
        out[f"model-serving-{track}-transformer"] = stack.transformer.url
        out[f"model-serving-{track}-predictor"] = stack.predictor.url
        out[f"model-serving-{track}-explainer"] = explainer_url or stack.explainer.url
    return out


@pytest.mark.parametrize("entry", ["transformer", "predictor"])
def test_helm_test_infers_and_explains_through_the_virtual_service(
    helm: Helm, stack: Stack, entry: str
) -> None:
    docs = helm.template(set_values={"transformer.enabled": str(entry == "transformer").lower()})
    (vs,) = by_kind(docs, "VirtualService")
    script = _test_pod(docs)["spec"]["containers"][0]["args"][0]
    router, agent = MeshRouter(vs, _backends(stack)), PilotAgent()
    router.start()
    agent.start()
    try:
        proc = _run(script, router, agent)
    finally:
        router.stop()
        agent.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "inference ok:" in proc.stdout and "explanation ok:" in proc.stdout
    routes = {(name, service.rsplit("-", 1)[1]) for _, name, service in router.routed}
    # readiness + inference by the weighted `primary` route to a transformer, the explanation by `explain`
    assert ("explain", "explainer") in routes
    assert {r for r in routes if r[0] != "explain"} == {("primary", entry)}
    verb = ":predict" if entry == "transformer" else "/infer"
    assert any(path.endswith(verb) for path, _, _ in router.routed)
    assert agent.calls == [("POST", "/quitquitquit")]  # the sidecar is stopped: the pod finishes


def test_helm_test_stops_its_sidecar_when_it_fails(helm: Helm, stack: Stack) -> None:
    """An explainer that is down: the test fails with the reason, and still finishes."""
    docs = helm.template()
    (vs,) = by_kind(docs, "VirtualService")
    script = _test_pod(docs)["spec"]["containers"][0]["args"][0]
    dead = f"http://127.0.0.1:{free_port()}"
    router, agent = MeshRouter(vs, _backends(stack, explainer_url=dead)), PilotAgent()
    router.start()
    agent.start()
    try:
        proc = _run(script, router, agent)
    finally:
        router.stop()
        agent.stop()
    assert proc.returncode != 0
    assert "inference ok:" in proc.stdout and "explanation ok:" not in proc.stdout
    assert "HTTP Error 503" in proc.stderr, proc.stderr
    assert agent.calls == [("POST", "/quitquitquit")]
