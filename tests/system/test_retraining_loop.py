"""Issue 14 end to end on ``STACK_RETRAINING=true make up``: the whole loop with real processes.

A shifted population (patients the stable model never saw, following a changed rule) goes through
Envoy with its true labels fed back per answer. Nothing else is poked: the drift detector's windows
drift, Prometheus fires the chart's ``ModelDriftPersistent``, Alertmanager notifies the retrain
trigger, which runs ``python -m training retrain`` on the detector's ``GET /labelled``; the
accepted challenger (numbers in its model card) goes into the canary, ``rollout run`` (quality gate
on: labelled traffic keeps flowing) steps it up to 100 %, and the trigger moves the stable programs
onto the new bundle and the weights back to 100/0. The stable track then answers with the new
``model_version``. Then the loop must not re-trigger itself: the drift detector restarts on the
promoted bundle (its reference), and more of the same shifted, labelled traffic (3 windows)
neither drifts against it nor starts a second run. The rejected path (noisy labels: nothing
changes) runs with real processes in ``tests/retraining/test_local_loop.py`` and ``test_real_store.py``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_support import LocalStack, wait_for
from support import REPO

sys.path.insert(0, str(REPO / "tests" / "retraining"))
from retraining_population import LabelledTraffic, shifted

STABLE = {"x-model-version": "stable"}
CANARY = {"x-model-version": "canary"}
BATCH = 20
# `rollout run` of the run: short steps; p99 limits generous (a busy 2-core machine); the quality
# gate (ROLLOUT_MAX_ACCURACY_DROP, drift gate off) comes from the stack's own ROLLOUT_ENV.
ROLLOUT = {
    "ROLLOUT_STEPS": "25,50,100",
    "ROLLOUT_INTERVAL": "4s",
    "ROLLOUT_WINDOW": "10s",
    "ROLLOUT_MIN_REQUESTS": "2",
    "ROLLOUT_MIN_LABELLED": "50",
    "ROLLOUT_MAX_P99": "5s",
    "ROLLOUT_MAX_P99_RATIO": "20",
    "ROLLOUT_P99_SLACK": "2s",
    "ROLLOUT_MAX_FAILED_CHECKS": "4",
}
DRIFT = {
    # windows of 200 rows: ModelDriftPersistent (>= 3 drifted windows of the predictor's stream)
    # fires after ~600 stable rows (~670 sent), all labelled by then
    "DRIFT_WINDOW_SIZE": "200",
    "DRIFT_QUALITY_INTERVAL_SECONDS": "2",
    "DRIFT_FEEDBACK_FLUSH_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, gbm_bundle: Path, mlp_bundle: Path
) -> Iterator[LocalStack]:
    """``make up`` with retraining on; bundles in a folder of their own (challengers land there)."""
    bundles = tmp_path_factory.mktemp("bundles")
    (bundles / "gbm").symlink_to(gbm_bundle)
    (bundles / "mlp").symlink_to(mlp_bundle)
    s = LocalStack(tmp_path_factory.mktemp("stack"), bundles)
    s.env["STACK_RETRAINING"] = "true"
    s.env["STACK_EXTRA_ENV"] = json.dumps({"drift-detector": DRIFT, "retrain-trigger": ROLLOUT})
    try:
        s.up()
        yield s
    finally:
        s.down()


class Feeder:
    """Shifted labelled traffic in the background (bounded: ``limit`` seconds at most)."""

    def __init__(self, stack: LocalStack, limit: float) -> None:
        self.stack, self.limit = stack, limit
        self.stop = threading.Event()
        self.seen: dict[str, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline, seed = time.monotonic() + self.limit, 1000
        with httpx.Client(timeout=30) as client:
            traffic = traffic_for(client, self.stack)
            self.seen = traffic.seen
            while not self.stop.is_set() and time.monotonic() < deadline:
                traffic.send(shifted(60, seed=seed, start=time.time()))
                seed += 1

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)


def traffic_for(client: httpx.Client, stack: LocalStack) -> LabelledTraffic:
    return LabelledTraffic(client, stack.url("envoy"), stack.info["model"], batch=BATCH)


def trigger_status(stack: LocalStack) -> dict[str, Any]:
    answer = httpx.get(f"http://127.0.0.1:{stack.ports['retrain-trigger']}/status", timeout=5)
    status: dict[str, Any] = answer.json()
    return status


def ended(status: dict[str, Any], run: str) -> dict[str, Any] | None:
    """``status`` once run ``run``'s rollout has ended and, after a promotion, the stable side and
    the drift detector moved."""
    last = status["last"]
    if last.get("run") != run or "rollout_outcome" not in last:
        return None
    return status if last["rollout_outcome"] != "promoted" or "detector" in last else None


def detector_stream(stack: LocalStack, component: str = "predictor") -> dict[str, Any] | None:
    """The drift detector's ``GET /status`` entry of the stable InferenceService's ``component``."""
    status = httpx.get(f"{stack.url('driftDetector')}/status", timeout=5).json()
    return next(
        (
            s
            for s in status.get("streams", [])
            if s["inferenceservice"] == stack.info["stable"] and s["component"] == component
        ),
        None,
    )


def drift_detected(stack: LocalStack, component: str = "predictor") -> dict[str, float]:
    """``drift_detected`` of the stable InferenceService's ``component`` stream, by ``kind``."""
    text = httpx.get(f"{stack.url('driftDetector')}/metrics", timeout=5).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        stream = f'inferenceservice="{stack.info["stable"]}"' in line and f'component="{component}"' in line
        if line.startswith("drift_detected{") and stream:
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            out[kind] = float(line.rsplit(" ", 1)[1])
    return out


def versions(stack: LocalStack, n: int, headers: dict[str, str] | None = None) -> dict[str, int]:
    """``n`` requests through Envoy: their answers by ``model_version``."""
    with httpx.Client(timeout=30) as client:
        return traffic_for(client, stack).send(shifted(n * BATCH, seed=77), headers)


def test_drift_retrain_canary_and_gated_promotion_with_real_processes(stack: LocalStack) -> None:
    retrain_dir = stack.state_dir / "retrain"
    assert trigger_status(stack)["current"] is None

    # 1. the shifted population with labels, through Envoy, until the drift alert starts a run
    with httpx.Client(timeout=30) as client:
        traffic = traffic_for(client, stack)
        for seed in range(3, 23):  # bounded: 2,000 rows at most
            traffic.send(shifted(100, seed=seed, start=time.time()))
            if trigger_status(stack)["counters"].get("alerts/started"):
                break
        traffic.flush()
    assert traffic.seen.get("label:accepted", 0) >= 600, traffic.seen
    wait_for(
        "Alertmanager's ModelDriftPersistent notification to start a run",
        lambda: trigger_status(stack)["counters"].get("alerts/started"),
        60,
        1,
    )
    deliveries = httpx.get(f"{stack.url('receiver')}/deliveries", timeout=5).json()["deliveries"]
    persistent = [
        a["labels"]
        for d in deliveries
        if d["path"] == "/alertmanager"
        for a in d["body"]["alerts"]
        if a["labels"]["alertname"] == "ModelDriftPersistent"
    ]
    assert {a["inferenceservice"] for a in persistent} >= {stack.info["stable"]}, persistent

    # 2. training on the detector's labelled rows: accepted, its numbers in the model card
    status = wait_for(
        "the training run's decision",
        lambda: (s := trigger_status(stack))["last"].get("decision") and s,
        150,
        1,
    )
    last = status["last"]
    assert last["decision"] == "accepted", (last, (retrain_dir / f"{last['run']}.log").read_text()[-3000:])
    version = last["version"]
    card = json.loads((stack.bundles / version / "model_card.json").read_text())
    ev = card["evaluation"]
    assert ev["decision"] == "accepted" and ev["n_holdout"] >= 100
    for metric in ("accuracy", "roc_auc"):
        assert ev["challenger"][metric]["value"] > ev["champion"][metric]["value"], ev
        assert ev["diff"][metric]["low"] >= -ev["margin"], ev
    assert card["lineage"]["parent"]["version"] == "gbm-1"
    assert card["lineage"]["data"]["rows"]["production"] >= 300, card["lineage"]
    assert last["canary"] == f"pvc://model-bundles/{version}"
    assert last["previous"] == "pvc://model-bundles/mlp"

    # 3. the canary serves the challenger; `rollout run` judges it on labelled traffic
    assert versions(stack, 3, CANARY) == {version: 3}
    rollout_log = retrain_dir / f"rollout-{last['run']}.log"
    with Feeder(stack, limit=150) as feeder:
        done = wait_for(  # not `current is None`: a later alert may start the next run at once
            "the rollout's end and the stable side on the new bundle",
            lambda: ended(trigger_status(stack), last["run"]),
            150,
            1,
        )
    log = rollout_log.read_text()
    assert done["last"].get("rollout_outcome") == "promoted", (done, log[-3000:], feeder.seen)
    assert done["last"]["stable"] == f"pvc://model-bundles/{version}", done
    assert "rollout succeeded: canary at 100%" in log, log[-3000:]
    for step in (
        "start: starting the rollout at canary 25%",
        "advance: analysis passed; canary 25% -> 50%",
        "promote: analysis passed at canary 50%; canary promoted to 100%",
    ):
        assert step in log, log[-3000:]
    gate = [line for line in log.splitlines() if "[ok] canary accuracy" in line]
    assert len(gate) >= 2, log[-3000:]  # the quality gate judged every step
    assert feeder.seen.get(version, 0) > 0, feeder.seen

    # 4. promoted: the stable track serves the new bundle and takes all traffic back
    assert stack.weights() == (100, 0)
    stack.wait_routes_applied()
    assert versions(stack, 5) == {version: 5}
    assert versions(stack, 3, STABLE) == {version: 3}
    events = [json.loads(line) for line in (retrain_dir / "events.jsonl").read_text().splitlines()]
    reasons = [e["reason"] for e in events]
    assert reasons[:3] == ["RetrainStarted", "RetrainPromotedToCanary", "RetrainPromoted"], reasons
    assert f"stable pvc://model-bundles/gbm -> pvc://model-bundles/{version}" in events[2]["message"]
    routes_events = [
        json.loads(line)["reason"]
        for line in Path(stack.info["virtualService"]["file"])
        .with_name("events.jsonl")
        .read_text()
        .splitlines()
    ]
    assert routes_events.index("RetrainStablePromoted") > routes_events.index("RolloutPromote"), routes_events
    assert reasons[3] == "RetrainDetectorUpdated", reasons
    assert f"drift detector pvc://model-bundles/gbm -> pvc://model-bundles/{version}" in events[3]["message"]
    programs = json.loads((stack.state_dir / "programs.json").read_text())
    for name in ("stable-predictor", "canary-predictor", "drift-detector"):
        command = programs[name]["command"]
        assert command[command.index("--model_dir") + 1] == str(stack.bundles / version), name
    assert done["last"]["detector"] == f"pvc://model-bundles/{version}", done

    # 5. the loop does not re-trigger itself: the detector judges against the promoted bundle, and
    # 3 more windows of the same shifted, labelled population neither drift nor start a second run
    before = trigger_status(stack)
    assert before["counters"].get("alerts/started") == 1, before
    with httpx.Client(timeout=30) as client:
        traffic = traffic_for(client, stack)
        for seed in range(500, 507):  # bounded: 700 rows, 3 windows of the predictor's stream
            traffic.send(shifted(100, seed=seed, start=time.time()))
        assert traffic.seen.get(version) == 35, traffic.seen  # every answer from the promoted bundle
        stream = wait_for(
            "3 windows of the predictor's stream judged against the promoted bundle",
            lambda: (
                (s := detector_stream(stack)) and min(s["windows_evaluated"].values(), default=0) >= 3 and s
            ),
            60,
            1,
        )
        assert stream["prediction_drift"] == f"judged against reference {version}", stream
        assert stream["model_version"] == version, stream
        # ModelDriftPersistent needs more than half of the windows drifted: none of that here (a
        # single window may still drift by chance: each is a test at p_val 0.05)
        for kind in ("features", "prediction"):
            assert 2 * stream["windows_drifted"].get(kind, 0) < stream["windows_evaluated"][kind], stream
        # and the stream's drift_detected settles at 0 (at most 3 more windows, one at a time)
        for seed in range(600, 603):
            if drift_detected(stack) == {"features": 0.0, "prediction": 0.0}:
                break
            judged = detector_stream(stack) or stream
            traffic.send(shifted(200, seed=seed, start=time.time()))
            n = min(judged["windows_evaluated"].values())
            wait_for(
                "one more window judged",
                lambda n=n: min((detector_stream(stack) or stream)["windows_evaluated"].values()) > n,
                60,
                1,
            )
        traffic.flush()
    assert drift_detected(stack) == {"features": 0.0, "prediction": 0.0}, detector_stream(stack)
    after = trigger_status(stack)
    assert after["counters"].get("alerts/started") == 1, after  # one run, and only one
    assert after["current"] is None and after["last"]["run"] == last["run"], after
    assert after["cooldown"]["seconds"] == 300, after
