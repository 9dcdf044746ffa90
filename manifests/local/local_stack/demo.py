"""``make demo``: a narrated scenario on top of ``make up`` (which it leaves running).

Predictions through Envoy, the pin header, an explanation, the 90/10 split, the rollout CLI
promoting a healthy canary on real Prometheus metrics, rolling back a faulty one, and shifted
traffic firing the drift alert in Alertmanager.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from typing import Any

import httpx

from .settings import REPO, StackSettings
from .stack import Stack
from .traffic import Background, records, send

__all__ = ["run"]

FEATURE_DRIFT = 'max(drift_detected{inferenceservice="{inferenceservice}", kind="features"})'
# lenient latency limits: the demo is about errors and drift; a shared laptop has noisy p99s.
# Drift gates on inputs: the detector judges every stream's scores against the stable bundle's
# reference scores, so a canary with another model always shows prediction drift.
ROLLOUT_FLAGS = ["--interval", "10s", "--window", "20s", "--min-requests", "5", "--max-p99-ratio", "5",
                 "--p99-slack", "200ms", "--max-failed-checks", "1",
                 "--drift-query", FEATURE_DRIFT]  # fmt: skip


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 90 - len(text)), flush=True)


def rollout(settings: StackSettings, *args: str) -> int:
    cmd = [
        str(REPO / ".venv" / "bin" / "rollout"),
        *args,
        "--router",
        "local",
        "--local-stack",
        str(settings.state_dir),
    ]
    print("$ rollout " + " ".join(args) + " --router local", flush=True)
    return subprocess.run(cmd, cwd=REPO, timeout=600, check=False).returncode


def run(settings: StackSettings, stack: Stack) -> int:
    d: dict[str, Any] = stack.describe()
    envoy, model = d["envoy"], d["model"]
    recs = records(settings.bundles / "gbm")
    with httpx.Client(timeout=60) as client:
        heading(f"one prediction through Envoy ({envoy}), routes from the chart's VirtualService")
        for headers in ({}, {"x-model-version": "canary"}, {"x-model-version": "stable"}):
            r = client.post(
                f"{envoy}/v1/models/{model}:predict", json={"instances": [recs[0]]}, headers=headers
            )
            p = r.json()["predictions"][0]
            revision = r.headers.get("x-local-routes-version")
            print(
                f"  {json.dumps(headers):32} -> {r.json()['model_version']:6} {p['label']:9} "
                f"p={p['probability']:.3f}  (routes revision {revision})"
            )
        heading("an explanation (explanations go to the stable explainer unless pinned)")
        r = client.post(f"{envoy}/v1/models/{model}:explain", json={"instances": [recs[0]]})
        top = sorted(r.json()["explanations"][0]["attributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        print(
            f"  {r.json()['model_version']}: top attributions " + ", ".join(f"{k} {v:+.3f}" for k, v in top)
        )
    heading("400 requests: the VirtualService's weighted primary route at 90/10")
    print("  " + str(dict(Counter(a.model_version for a in send(envoy, model, recs, 400)))))
    heading("a progressive rollout of the healthy canary, on real metrics, with traffic flowing")
    rollout(settings, "set-weight", "0")
    with Background(envoy, model, recs, rate=20):
        code = rollout(settings, "run", "--restart", "--steps", "25,50,100", *ROLLOUT_FLAGS)
    print(f"  exit status {code} (0: promoted)")
    heading("where the rollout stands: weights, readiness, metrics from the local Prometheus, decision")
    rollout(settings, "status")
    heading("the same rollout with a faulty canary (PREDICTOR_FAULT_ERROR_RATE=0.3)")
    rollout(settings, "set-weight", "0")
    stack.restart("canary-predictor", {"PREDICTOR_FAULT_ERROR_RATE": "0.3"})
    try:
        with Background(envoy, model, recs, rate=20):
            code = rollout(settings, "run", "--restart", "--steps", "25,50,100", *ROLLOUT_FLAGS)
        print(f"  exit status {code} (7: analysis failed, traffic rolled back to stable)")
    finally:
        stack.restart("canary-predictor", {"PREDICTOR_FAULT_ERROR_RATE": None})
    rollout(settings, "set-weight", "10")
    heading("shifted traffic (high BMI and glucose) pinned to stable: the drift alert")
    send(
        envoy,
        model,
        records(settings.bundles / "gbm", shifted=True),
        450,
        headers={"x-model-version": "stable"},
    )
    deadline, firing = time.monotonic() + 90, list[Any]()
    while time.monotonic() < deadline and not firing:
        alerts = httpx.get(f"{d['alertmanager']}/api/v2/alerts", timeout=5).json()
        firing = [a["labels"] for a in alerts if a["labels"]["alertname"] == "ModelDriftDetected"]
        time.sleep(2)
    print(f"  Alertmanager: {firing or 'no ModelDriftDetected alert within 90 s'}")
    deliveries = httpx.get(f"{d['receiver']}/deliveries", timeout=5).json()["deliveries"]
    print(f"  receiver: {Counter(x['path'] for x in deliveries)} (GET {d['receiver']}/deliveries)")
    heading("the stack stays up: make status, make down")
    return 0
