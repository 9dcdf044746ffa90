"""The whole retraining loop on the local stack, narrated (issue 14 on issue 13's feedback store).

Needs the stack up with retraining on (ports from ``STACK_PORTS`` as for ``make up``); quick rollout
steps make the demo take ~3 minutes instead of ~10::

    STACK_RETRAINING=true STACK_EXTRA_ENV='{"retrain-trigger": {"ROLLOUT_STEPS": "25,50,100",
      "ROLLOUT_INTERVAL": "10s", "ROLLOUT_WINDOW": "20s", "ROLLOUT_MIN_REQUESTS": "2",
      "ROLLOUT_MIN_LABELLED": "50"}}' make up
    .venv/bin/python tests/tools/retrain_demo.py

1. a shifted population (older, heavier patients following a changed rule) goes through Envoy,
   each answer's true labels straight back (``/v1/models/NAME:feedback``), until the drift
   detector's windows drift, Prometheus fires ``ModelDriftPersistent`` and Alertmanager notifies the
   retrain trigger (``--alert`` posts ``ModelAccuracyBelowModelCard`` to Alertmanager instead, with
   a label unique to this demo so Alertmanager never holds it back as already notified);
2. the trigger runs ``python -m training retrain`` on the detector's ``GET /labelled``: decision,
   champion vs challenger on the recent hold-out (95% intervals), lineage;
3. the canary serves the challenger; labelled traffic keeps flowing while ``rollout run`` (quality
   gate) steps it up, its decisions printed as they come;
4. after the promotion the stable track serves the new bundle and takes the traffic back;
5. the drift detector restarted on the promoted bundle: its reference, 3 more windows of the same
   patients judged against it (no drift), and still one run (later alerts: ``cooldown``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "retraining"))
sys.path.insert(0, str(ROOT / "manifests" / "local"))
from local_stack.settings import StackSettings  # noqa: E402
from retraining_population import LabelledTraffic, shifted  # noqa: E402

BATCH = 20
STEP_WORDS = ("start:", "advance:", "hold:", "promote:", "rollback:", "canary accuracy", "rollout ")


class Demo:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.stack = json.loads((settings.state_dir / "stack.json").read_text())
        self.model = self.stack["model"]
        self.envoy = self.stack["envoy"]
        self.trigger = f"http://127.0.0.1:{settings.port('retrain-trigger')}"
        self.client = httpx.Client(timeout=60)
        self.traffic = LabelledTraffic(self.client, self.envoy, self.model, batch=BATCH)
        self.seed = 1000

    def more(self, n: int = 100) -> dict[str, int]:
        """``n`` new shifted patients with their labels; their answers by ``model_version``."""
        self.seed += 1
        return self.traffic.send(shifted(n, seed=self.seed, start=time.time()))

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.client.get(f"{self.trigger}/status").json()
        return status

    def detector_stream(self, *, wait: float, windows: int) -> dict[str, Any] | None:
        """The detector's ``GET /status`` entry of the stable predictor's stream, once it has
        judged ``windows`` windows (at most ``wait`` seconds)."""
        url = f"http://127.0.0.1:{self.settings.port('drift-detector')}/status"
        deadline = time.monotonic() + wait
        while True:
            streams = self.client.get(url).json().get("streams", [])
            stream = next(
                (
                    s
                    for s in streams
                    if s["inferenceservice"] == self.stack["stable"] and s["component"] == "predictor"
                ),
                None,
            )
            if stream and stream["windows_evaluated"].get("features", 0) >= windows:
                return dict(stream)
            if time.monotonic() > deadline:
                return None
            time.sleep(1.0)

    def routes(self) -> list[dict[str, Any]]:
        vs = yaml.safe_load(Path(self.stack["virtualService"]["file"]).read_text())
        routes: list[dict[str, Any]] = vs["spec"]["http"]
        return routes

    def post_alert(self) -> None:
        alert = {
            "labels": {
                "alertname": "ModelAccuracyBelowModelCard",
                "inferenceservice": self.stack["stable"],
                "severity": "page",
                "demo_run": str(int(time.time())),  # a new alert each time: never held back
            },
            "annotations": {"summary": "live accuracy below the model card (retrain_demo --alert)"},
        }
        self.client.post(f"{self.stack['alertmanager']}/api/v2/alerts", json=[alert]).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alert-wait", type=float, default=180.0, help="seconds of traffic for the alert")
    parser.add_argument("--alert", action="store_true", help="post the quality alert instead of waiting")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds for the training run")
    parser.add_argument("--rollout-wait", type=float, default=900.0, help="seconds for the rollout")
    args = parser.parse_args()
    demo = Demo(StackSettings())
    stable, canary = demo.stack["stable"], demo.stack["canary"]
    started = demo.status()["counters"].get("alerts/started", 0)
    print(f"1. shifted patients through Envoy ({demo.envoy}), {BATCH} a request, true labels back per answer")
    if args.alert:
        print("   " + json.dumps(demo.more(400)))
        print("   alert ModelAccuracyBelowModelCard -> Alertmanager -> retrain trigger")
        demo.post_alert()
    sent, deadline = 0, time.monotonic() + args.alert_wait
    while demo.status()["counters"].get("alerts/started", 0) == started:  # bounded by --alert-wait
        if time.monotonic() > deadline:
            print(
                f"   no run started within {args.alert_wait:g} s: is the stack up with STACK_RETRAINING=true?"
            )
            return 1
        seen = demo.more()
        sent += 100
        if sent % 500 == 0:
            print(f"   {sent:>5} rows sent, last answers by version {seen}")
        time.sleep(1.0)  # a steady stream: Prometheus and Alertmanager need a few seconds to react
    run = demo.status()["current"]
    print(f"   Alertmanager notified the trigger: run {run} started (python -m training retrain)")

    print("2. the run's decision:")
    deadline = time.monotonic() + args.wait
    while not demo.status()["last"].get("decision") or demo.status()["last"].get("run") != run:
        if time.monotonic() > deadline:
            print(f"   no decision within {args.wait:g} s: {demo.status()}")
            return 1
        time.sleep(2)
    last = demo.status()["last"]
    print(f"   {last['decision']}: {'; '.join(last['reasons'])}")
    if last["decision"] != "accepted":
        print("   nothing changed (canary and stable untouched); the reasons above say why")
        return 0
    version = last["version"]
    card = json.loads((demo.settings.bundles / version / "model_card.json").read_text())
    ev, lineage = card["evaluation"], card["lineage"]
    print(
        f"   challenger {version} vs champion {lineage['parent']['version']} "
        f"on {ev['n_holdout']} recent rows:"
    )
    for metric in ("accuracy", "roc_auc", "brier_score"):
        if metric in ev["challenger"]:
            c, h, d = ev["champion"][metric], ev["challenger"][metric], ev["diff"][metric]
            print(
                f"   {metric:<12} champion {c['value']:.3f}  challenger {h['value']:.3f}  "
                f"diff {d['value']:+.3f} (95% CI {d['low']:+.3f} .. {d['high']:+.3f})"
            )
    print(f"   lineage: rows {lineage['data']['rows']}, code {lineage['code_version']}")
    print(f"   canary {last['previous']} -> {last['canary']}; {last['rollout']}")

    print(f"3. labelled traffic while `rollout run` judges the challenger ({canary} vs {stable}):")
    log = demo.settings.state_dir / "retrain" / f"rollout-{run}.log"
    printed = 0
    deadline = time.monotonic() + args.rollout_wait
    while demo.status()["current"] == run:  # bounded by --rollout-wait
        if time.monotonic() > deadline:
            print(f"   the rollout did not end within {args.rollout_wait:g} s")
            return 1
        demo.more()
        time.sleep(0.5)  # a steady stream, not a load test
        lines = log.read_text().splitlines() if log.is_file() else []
        for line in lines[printed:]:
            if any(w in line for w in STEP_WORDS):
                print("   " + line[-200:])
        printed = len(lines)
    last = demo.status()["last"]
    print(f"4. rollout {last.get('rollout_outcome')}; stable: {last.get('stable', 'untouched')}")
    weights = next(r for r in demo.routes() if r["name"] == "primary")["route"]
    print(f"   weights now {[d['weight'] for d in weights]} (stable, canary)")
    print(f"   20 requests through Envoy, answers by version: {demo.more(400)}")
    print(f"5. the drift detector judges against {last.get('detector', 'the old bundle (untouched)')}")
    demo.more(300)  # with the 400 above: 3 windows of 200 rows of the predictor's stream
    demo.traffic.flush()
    stream = demo.detector_stream(wait=30.0, windows=3)
    if stream is None:
        print("   no 3 windows of the stable predictor's stream judged within 30 s")
        return 1
    evaluated, drifted = stream["windows_evaluated"], stream["windows_drifted"]
    print(f"   its reference: {stream['prediction_drift']}")
    print(
        f"   the same shifted patients since the restart: windows {evaluated}, drifted {drifted} "
        f"({'no' if all(2 * drifted.get(k, 0) < n for k, n in evaluated.items()) else 'a'} persistent drift)"
    )
    status = demo.status()
    started = status["counters"].get("alerts/started", 0)
    print(
        f"   runs started: {started}; alerts answered 'cooldown': "
        f"{status['counters'].get('alerts/cooldown', 0)} ({status['cooldown']['remaining']:.0f} s of it left)"
    )
    labels = {k.removeprefix("label:"): v for k, v in demo.traffic.seen.items() if k.startswith("label:")}
    print(f"   labels fed back over the whole demo, by outcome: {labels}")
    # ModelDriftPersistent needs more than half of the windows drifted (one may drift by chance)
    calm = all(2 * drifted.get(kind, 0) < n for kind, n in evaluated.items())
    settled = last.get("detector") == last.get("stable") and calm and started == 1
    return 0 if last.get("rollout_outcome") == "promoted" and settled else 1


if __name__ == "__main__":
    raise SystemExit(main())
