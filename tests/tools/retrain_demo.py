"""The whole retraining loop on the local stack, narrated (issue 14 on issue 13's feedback store).

Needs ``STACK_RETRAINING=true make up`` running (ports from ``STACK_PORTS`` as for ``make up``).
Labelled traffic -> quality alert -> retrain -> challenger numbers -> canary bundle -> gated
promotion:

1. a shifted population (older, heavier patients following a changed rule) goes through Envoy;
2. its true labels go back through Envoy (``/v1/models/NAME:feedback``, per id and row);
3. the detector's live quality for the stable InferenceService is printed beside its model card;
4. the alert ``ModelAccuracyBelowModelCard`` is posted to the real Alertmanager, which notifies
   the retrain trigger; the trigger runs ``python -m training retrain`` against the detector's
   ``GET /labelled``, and on acceptance ``canary-bundle`` and ``rollout run``;
5. the run's decision, challenger numbers, lineage and the rollout's outcome are printed.

    STACK_PORTS=... .venv/bin/python tests/tools/retrain_demo.py [--rows 600]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "retraining"))
sys.path.insert(0, str(ROOT / "manifests" / "local"))
from local_stack.settings import StackSettings  # noqa: E402
from retraining_population import shifted  # noqa: E402

MODEL = "diabetes-risk"
BATCH = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--wait", type=float, default=420.0, help="seconds to wait for the run")
    parser.add_argument(
        "--rollout-wait", type=float, default=480.0, help="seconds of traffic during the rollout"
    )
    args = parser.parse_args()
    settings = StackSettings()
    envoy = f"http://127.0.0.1:{settings.port('envoy')}"
    detector = f"http://127.0.0.1:{settings.port('drift-detector')}"
    alertmanager = f"http://127.0.0.1:{settings.port('alertmanager')}"
    trigger = f"http://127.0.0.1:{settings.port('retrain-trigger')}"
    pop = shifted(args.rows, seed=3, start=time.time())
    with httpx.Client(timeout=60) as client:
        print(f"1. {args.rows} patients of a shifted population through Envoy ({envoy}), {BATCH} a request")
        pairs: list[dict[str, Any]] = []
        for k in range(0, args.rows, BATCH):
            answer = client.post(
                f"{envoy}/v1/models/{MODEL}:predict", json={"instances": pop.records[k : k + BATCH]}
            )
            answer.raise_for_status()
            rid = answer.json()["id"]
            pairs += [{"id": rid, "row": i, "label": lab} for i, lab in enumerate(pop.labels[k : k + BATCH])]
        time.sleep(2)  # the loggers send asynchronously; the store writes every flush interval
        print(f"2. their {len(pairs)} true labels back through Envoy ({MODEL}:feedback)")
        answer = client.post(f"{envoy}/v1/models/{MODEL}:feedback", json={"instances": pairs})
        print(
            f"   HTTP {answer.status_code}: {json.dumps(answer.json().get('summary', answer.json()))[:300]}"
        )
        quality = client.get(f"{detector}/quality", params={"refresh": "true"}).json()
        print("3. live quality (drift detector /quality) vs the model card:")
        for s in quality.get("streams", []):
            m = s.get("metrics") or {}
            print(
                f"   {s['inferenceservice']:<24} {s.get('component', ''):<12} labelled={s.get('labelled')} "
                f"accuracy={m.get('accuracy')} roc_auc={m.get('roc_auc')}"
            )
        print(f"   model card: accuracy={quality.get('model_card', {}).get('accuracy')}")
        stable = "model-serving-stable"
        alert = {
            "labels": {
                "alertname": "ModelAccuracyBelowModelCard",
                "inferenceservice": stable,
                "severity": "page",
            },
            "annotations": {"summary": "live accuracy below the model card (retrain_demo)"},
        }
        print(f"4. alert ModelAccuracyBelowModelCard -> Alertmanager ({alertmanager}) -> retrain trigger")
        client.post(f"{alertmanager}/api/v2/alerts", json=[alert]).raise_for_status()
        status: dict[str, Any] = {}
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:  # bounded
            status = client.get(f"{trigger}/status").json()
            if status.get("current") is None and status.get("last"):
                break
            time.sleep(2)
        print("5. the run:")
        print(json.dumps(status, indent=2)[:4000])
        last = status.get("last") or {}
        version = (last.get("training") or {}).get("version") or last.get("version")
        if version:
            card = json.loads((settings.bundles / str(version) / "model_card.json").read_text())
            ev, lineage = card.get("evaluation", {}), card.get("lineage", {})
            for metric in ("accuracy", "roc_auc"):
                print(
                    f"   {metric}: champion {ev['champion'][metric]['value']:.3f} "
                    f"challenger {ev['challenger'][metric]['value']:.3f} "
                    f"diff 95% CI [{ev['diff'][metric]['low']:.3f}, {ev['diff'][metric]['high']:.3f}]"
                )
            print(f"   lineage: parent {lineage['parent']['version']} rows {lineage['data']['rows']}")
        if last.get("decision") == "accepted" and args.rollout_wait > 0:
            print(f"6. labelled traffic while the rollout judges the challenger (<= {args.rollout_wait:g} s)")
            logs = sorted((settings.state_dir / "retrain").glob(f"rollout-{last['run']}.log"))
            deadline, seed = time.monotonic() + args.rollout_wait, 100
            while time.monotonic() < deadline:  # bounded
                feed(client, envoy, shifted(200, seed=seed, start=time.time()))
                seed += 1
                text = logs[0].read_text() if logs else ""
                if any(w in text for w in ("promote:", "rollback:", "promoted", "rolled back")):
                    break
            print(
                "   " + "\n   ".join((logs[0].read_text() if logs else "(no rollout log)").splitlines()[-12:])
            )
    return 0 if status.get("last") else 1


def feed(client: httpx.Client, envoy: str, pop: Any) -> None:
    """One batch of predictions and their labels; answers other than 200 (a restarting canary) skipped."""
    pairs: list[dict[str, Any]] = []
    for k in range(0, len(pop.records), 10):
        answer = client.post(
            f"{envoy}/v1/models/{MODEL}:predict", json={"instances": pop.records[k : k + 10]}
        )
        if answer.status_code == 200:
            rid = answer.json()["id"]
            pairs += [{"id": rid, "row": i, "label": lab} for i, lab in enumerate(pop.labels[k : k + 10])]
    time.sleep(1)
    client.post(f"{envoy}/v1/models/{MODEL}:feedback", json={"instances": pairs})


if __name__ == "__main__":
    raise SystemExit(main())
