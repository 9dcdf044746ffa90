"""The retraining trigger against the fake API server, seeded with the chart's own render: one alert
starts exactly the Job the chart's CronJob describes, repeated alerts start nothing (also while the
run's `rollout run` Job goes, seen by a restarted trigger), an accepted run moves the canary
(guarded) and starts `rollout run`; when that promotes, the stable InferenceService takes the
bundle, the VirtualService goes back to 100/0 and the drift detector's Deployment takes the bundle
(so the next alert is not the old reference judging the new population), and the next run's
champion is the bundle the stable side serves; a rolled-back or rejected one changes nothing;
alerts within the cooldown after a run start nothing."""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fake_batch_api import FakeBatchAPI
from rollout.errors import KubeError
from rollout.kube import connect
from rollout.retrain.alerts import Reason
from rollout.retrain.detector import bundle_patch
from rollout.retrain.jobs import RUN_LABEL, TRIGGER_LABEL
from rollout.retrain.runners import KubeRunner, LocalRunner
from rollout.retrain.server import TriggerServer
from rollout.retrain.trigger import Trigger
from support import REPO

NS = "models"
VALUES = REPO / "helm" / "model-serving" / "ci" / "retraining-values.yaml"
Obj = dict[str, Any]


def _helm() -> str:
    found = shutil.which("helm") or str(REPO / ".tools" / "bin" / "helm")
    if not Path(found).is_file():
        pytest.fail("helm not found: run `make tools` (or put helm on PATH)")
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], Obj]:
    out = subprocess.run(
        [
            _helm(),
            "template",
            "model-serving",
            str(VALUES.parent.parent),
            "-f",
            str(VALUES),
            "--namespace",
            NS,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


@dataclass
class Stack:
    api: FakeBatchAPI
    trigger: Trigger
    url: str
    rendered: dict[tuple[str, str], Obj]

    def alert(self, name: str = "ModelDriftPersistent", status: str = "firing") -> httpx.Response:
        body = {
            "version": "4",
            "status": status,
            "alerts": [
                {"status": status, "labels": {"alertname": name, "inferenceservice": "model-serving-stable"}}
            ],
        }
        return httpx.post(f"{self.url}/alertmanager", json=body, timeout=10)

    def jobs(self) -> list[Obj]:
        return self.api.items("batch/v1", "jobs")

    def canary(self) -> Obj:
        return self.api.get("serving.kserve.io/v1beta1", "inferenceservices", NS, "model-serving-canary")

    def stable(self) -> Obj:
        return self.api.get("serving.kserve.io/v1beta1", "inferenceservices", NS, "model-serving-stable")

    def detector(self) -> Obj:
        return self.api.get("apps/v1", "deployments", NS, "model-serving-drift-detector")

    def weights(self) -> dict[str, int]:
        vs = self.api.get("networking.istio.io/v1", "virtualservices", NS, "model-serving")
        (primary,) = [r for r in vs["spec"]["http"] if r["name"] == "primary"]
        return {d["destination"]["host"].split("-")[2]: d["weight"] for d in primary["route"]}

    def promoted_by_rollout(self) -> None:
        """What `rollout run` leaves after a promotion: canary 100 %."""

        def promote(vs: Obj) -> None:
            (primary,) = [r for r in vs["spec"]["http"] if r["name"] == "primary"]
            for d in primary["route"]:
                d["weight"] = 100 if "-canary-" in d["destination"]["host"] else 0

        self.api.edit("networking.istio.io/v1", "virtualservices", NS, "model-serving", promote)

    def wait_rollout_job(self) -> Obj:
        for _ in range(300):  # bounded: 15 s
            found = [j for j in self.jobs() if j["metadata"]["name"].startswith("model-serving-rollout-")]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no rollout Job: {[j['metadata']['name'] for j in self.jobs()]}")

    def finish(self, job: Obj, summary: Obj, *, failed: bool = False) -> None:
        name = job["metadata"]["name"]
        condition = {
            "type": "Failed" if failed else "Complete",
            "status": "True",
            "reason": "PodFailurePolicy",
        }
        self.api.edit("batch/v1", "jobs", NS, name, lambda j: j.update(status={"conditions": [condition]}))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-abcde", "namespace": NS, "labels": {"job-name": name}},
            "status": {
                "containerStatuses": [
                    {"name": "training", "state": {"terminated": {"message": json.dumps(summary)}}}
                ]
            },
        }
        self.api.put(pod, "pods")


def _env(rendered: dict[tuple[str, str], Obj]) -> dict[str, str]:
    (container,) = rendered["StatefulSet", "model-serving-retrain-trigger"]["spec"]["template"]["spec"][
        "containers"
    ]
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.fixture
def stack(rendered: dict[tuple[str, str], Obj], tmp_path: Path) -> Iterator[Stack]:
    api = FakeBatchAPI().start()
    try:
        for kind, name, plural in (
            ("CronJob", "model-serving-retrain", "cronjobs"),
            ("CronJob", "model-serving-rollout", "cronjobs"),
            ("InferenceService", "model-serving-canary", "inferenceservices"),
            ("VirtualService", "model-serving", "virtualservices"),
            ("Deployment", "model-serving-drift-detector", "deployments"),
        ):
            api.put(rendered[kind, name], plural)
        ready = {"conditions": [{"type": "Ready", "status": "True"}]}
        api.put(
            {**rendered["InferenceService", "model-serving-stable"], "status": ready}, "inferenceservices"
        )
        env = _env(rendered)
        with connect(
            str(api.write_kubeconfig(tmp_path / "kubeconfig", NS)), None, env["ROLLOUT_RETRAIN_NAMESPACE"]
        ) as gw:
            runner = KubeRunner(
                gw,
                retrain_cronjob=env["ROLLOUT_RETRAIN_RETRAIN_CRONJOB"],
                rollout_cronjob=env["ROLLOUT_RETRAIN_ROLLOUT_CRONJOB"],
                canary=env["ROLLOUT_RETRAIN_CANARY"],
                selector=env["ROLLOUT_RETRAIN_SELECTOR"],
                stable=env["ROLLOUT_RETRAIN_STABLE"],
                virtual_service=env["ROLLOUT_RETRAIN_VIRTUAL_SERVICE"],
                rollout_args=shlex.split(env["ROLLOUT_RETRAIN_ROLLOUT_ARGS"]),
                drift_detector=env["ROLLOUT_RETRAIN_DRIFT_DETECTOR"],
                ready_timeout=10,
            )
            trigger = Trigger(
                runner,
                poll_seconds=0.05,
                deadline_seconds=60,
                cooldown_seconds=float(env["ROLLOUT_RETRAIN_COOLDOWN_SECONDS"]),
            )
            alerts = frozenset(env["ROLLOUT_RETRAIN_ALERTS"].split(","))
            server = TriggerServer(trigger, alerts, "127.0.0.1", 0).start()
            try:
                yield Stack(api, trigger, f"http://127.0.0.1:{server.port}", rendered)
            finally:
                server.stop()
    finally:
        api.stop()


def _storage_uris(isvc: Obj) -> dict[str, str]:
    return {
        f"{component}/{c['name']}": e["value"]
        for component in ("predictor", "transformer", "explainer")
        for c in isvc["spec"].get(component, {}).get("containers", [])
        for e in c.get("env", [])
        if e["name"] == "STORAGE_URI"
    }


def _metric(text: str, series: str) -> float:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])


def _record_patches(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Every patch the trigger sends, as (plural, name, body), passed on to the fake API."""
    gateway = stack.trigger.runner.gateway  # type: ignore[attr-defined]
    real_patch, sent = gateway.patch, []

    def patch(kind: Any, name: str, body: Any) -> Obj:
        sent.append((kind.plural, name, copy.deepcopy(body)))
        result: Obj = real_patch(kind, name, body)
        return result

    monkeypatch.setattr(gateway, "patch", patch)
    return sent


def _model_mount(deployment: Obj) -> tuple[int, int]:
    """Indices of the detector's bundle volume and of its mount in the drift-detector container."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    m = next(i for i, vm in enumerate(container["volumeMounts"]) if vm["mountPath"] == "/mnt/models")
    name = container["volumeMounts"][m]["name"]
    return next(i for i, v in enumerate(pod["volumes"]) if v["name"] == name), m


def test_two_alerts_start_exactly_the_job_the_chart_describes_then_the_challenger_goes_into_the_canary(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = stack.alert()
    assert first.status_code == 202 and first.json()["outcome"] == "started"
    run = first.json()["run"]
    again = stack.alert()
    assert (again.status_code, again.json()["outcome"], again.json()["run"]) == (200, "duplicate", run)
    drift_event = httpx.post(
        f"{stack.url}/",
        content=json.dumps({"drift": True, "inferenceservice": "model-serving-stable"}),
        headers={"ce-type": "org.kubeflow.serving.drift.detected", "ce-specversion": "1.0", "ce-id": "1"},
        timeout=10,
    )
    assert drift_event.json()["outcome"] == "duplicate"

    (job,) = stack.jobs()
    cronjob = stack.api.get("batch/v1", "cronjobs", NS, "model-serving-retrain")
    template = stack.rendered["CronJob", "model-serving-retrain"]["spec"]["jobTemplate"]
    assert job["spec"] == template["spec"], "the Job is the chart's jobTemplate, unchanged"
    assert job["metadata"]["labels"] == {
        **template["metadata"]["labels"],
        RUN_LABEL: run,
        TRIGGER_LABEL: "ModelDriftPersistent",
    }
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "model-serving-retrain",
            "uid": cronjob["metadata"]["uid"],
            "controller": True,
        }
    ]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["retrain", "--champion", "/mnt/bundles/gbm"] and "/dev/termination-log" in args

    before = stack.canary()
    stack.finish(
        job,
        {
            "decision": "accepted",
            "version": "gbm-20261130T130000Z",
            "storage_uri": "pvc://model-bundles/gbm-20261130T130000Z",
            "reasons": ["accuracy: +0.2"],
        },
    )
    rollout_job = stack.wait_rollout_job()
    after = stack.canary()
    assert set(_storage_uris(before).values()) == {"pvc://model-bundles/mlp"}
    assert _storage_uris(after) == {
        k: "pvc://model-bundles/gbm-20261130T130000Z" for k in _storage_uris(before)
    }
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    # the chart's rollout Job, its `rollout run` with the gates of a retraining rollout appended
    expected = copy.deepcopy(
        stack.rendered["CronJob", "model-serving-rollout"]["spec"]["jobTemplate"]["spec"]
    )
    (container,) = expected["template"]["spec"]["containers"]
    assert container["args"][0] == "run" and "--ignore-drift" not in container["args"]
    container["args"] += ["--ignore-drift", "--max-accuracy-drop=0.02"]
    assert rollout_job["spec"] == expected
    assert rollout_job["metadata"]["labels"] == {RUN_LABEL: run}
    for _ in range(300):  # bounded: the Event follows the Job's creation
        if len(stack.api.events) >= 2:
            break
        time.sleep(0.05)
    assert [e["reason"] for e in stack.api.events] == ["RetrainStarted", "RetrainPromotedToCanary"]
    assert all(e["involvedObject"]["name"] == "model-serving-canary" for e in stack.api.events)
    assert (
        "pvc://model-bundles/mlp -> pvc://model-bundles/gbm-20261130T130000Z"
        in stack.api.events[1]["message"]
    )
    # while its rollout goes, the run is not over: neither this trigger nor a restarted one (which
    # knows the run only from the API: the rollout Job carries the run label) starts a second run
    assert stack.alert().json()["outcome"] == "duplicate"
    restarted = Trigger(stack.trigger.runner, poll_seconds=0.05)
    answer = restarted.notify([Reason("alertmanager", "ModelDriftPersistent", None)])
    assert (answer["outcome"], answer["run"]) == ("duplicate", rollout_job["metadata"]["name"])
    stable_before = stack.stable()
    assert set(_storage_uris(stable_before).values()) == {"pvc://model-bundles/gbm"}

    detector_before = stack.detector()
    patches = _record_patches(stack, monkeypatch)
    stack.promoted_by_rollout()
    stack.finish(rollout_job, {})
    assert stack.trigger.wait(30)
    assert _storage_uris(stack.stable()) == {
        k: "pvc://model-bundles/gbm-20261130T130000Z" for k in _storage_uris(stable_before)
    }, "the stable side serves the promoted bundle"
    assert _storage_uris(stack.canary()) == _storage_uris(after), "the canary keeps it (at 0 %)"
    assert stack.weights() == {"stable": 100, "canary": 0}
    reasons = [e["reason"] for e in stack.api.events]
    assert reasons == [
        "RetrainStarted",
        "RetrainPromotedToCanary",
        "RetrainStablePromoted",
        "RetrainPromoted",
        "RetrainDetectorUpdated",
    ]
    # the drift detector judges against the promoted bundle: one guarded JSON patch of its mount
    v, m = _model_mount(detector_before)
    claim = f"/spec/template/spec/volumes/{v}/persistentVolumeClaim/claimName"
    sub_path = f"/spec/template/spec/containers/0/volumeMounts/{m}/subPath"
    assert [p for p in patches if p[0] == "deployments"] == [
        (
            "deployments",
            "model-serving-drift-detector",
            [
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": detector_before["metadata"]["resourceVersion"],
                },
                {"op": "test", "path": claim, "value": "model-bundles"},
                {"op": "replace", "path": claim, "value": "model-bundles"},
                {"op": "test", "path": sub_path, "value": "gbm"},
                {"op": "replace", "path": sub_path, "value": "gbm-20261130T130000Z"},
            ],
        )
    ]
    expected_detector = copy.deepcopy(detector_before)
    expected_detector["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][m]["subPath"] = (
        "gbm-20261130T130000Z"
    )
    detector = stack.detector()
    assert int(detector["metadata"].pop("resourceVersion")) > int(
        expected_detector["metadata"].pop("resourceVersion")
    )
    assert detector == expected_detector, "only the bundle mount changed (the feedback claim stays)"
    assert "model-serving-drift-detector" in stack.api.events[4]["message"]
    assert stack.api.events[2]["involvedObject"]["name"] == "model-serving"
    assert (
        "stable pvc://model-bundles/gbm -> pvc://model-bundles/gbm-20261130T130000Z"
        in (stack.api.events[3]["message"])
    )
    metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
    assert _metric(metrics, 'retrain_alerts_total{outcome="started"}') == 1
    assert _metric(metrics, 'retrain_alerts_total{outcome="duplicate"}') == 3
    assert _metric(metrics, 'retrain_runs_total{decision="accepted"}') == 1
    assert _metric(metrics, 'retrain_canary_updates_total{outcome="updated"}') == 1
    assert _metric(metrics, 'retrain_stable_updates_total{outcome="updated"}') == 1
    assert _metric(metrics, 'retrain_detector_updates_total{outcome="updated"}') == 1
    assert _metric(metrics, "retrain_run_in_progress") == 0
    status = httpx.get(f"{stack.url}/status", timeout=10).json()
    assert status["current"] is None and status["last"]["decision"] == "accepted"
    assert (status["last"]["rollout_outcome"], status["last"]["stable"], status["last"]["detector"]) == (
        "promoted",
        "pvc://model-bundles/gbm-20261130T130000Z",
        "pvc://model-bundles/gbm-20261130T130000Z",
    )

    # the next alert comes within the cooldown: acknowledged, counted, nothing started
    cooling = stack.alert()
    assert (cooling.status_code, cooling.json()["outcome"], cooling.json()["run"]) == (200, "cooldown", run)
    assert "alerts start nothing for 1800 s after a run (cooldown)" in cooling.json()["message"]
    assert len(stack.jobs()) == 2, "no second run"
    metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
    assert _metric(metrics, 'retrain_alerts_total{outcome="cooldown"}') == 1

    # after it, the next run's champion is the bundle the stable side serves now, where the Job mounts it
    stack.trigger.cooldown_seconds = 0
    second = stack.alert()
    assert (second.status_code, second.json()["outcome"]) == (202, "started")
    (next_job,) = [j for j in stack.jobs() if j["metadata"]["labels"][RUN_LABEL] == second.json()["run"]]
    args = next_job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["retrain", "--champion", "/mnt/bundles/gbm-20261130T130000Z"]
    expected_spec = copy.deepcopy(template["spec"])
    expected_spec["template"]["spec"]["containers"][0]["args"][2] = "/mnt/bundles/gbm-20261130T130000Z"
    assert next_job["spec"] == expected_spec, "nothing else differs from the chart's jobTemplate"
    stack.finish(next_job, {"decision": "rejected", "reasons": ["no better"]}, failed=True)
    assert stack.trigger.wait(30)


def test_a_rollout_that_does_not_promote_leaves_the_stable_side_alone(stack: Stack) -> None:
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    uri = "pvc://model-bundles/gbm-20261130T140000Z"
    stack.finish(job, {"decision": "accepted", "version": "v", "storage_uri": uri, "reasons": []})
    rollout_job = stack.wait_rollout_job()
    stable, weights, detector = stack.stable(), stack.weights(), stack.detector()
    stack.finish(rollout_job, {}, failed=True)  # `rollout run` exited 7: rolled back
    assert stack.trigger.wait(30)
    assert stack.stable() == stable and stack.weights() == weights == {"stable": 90, "canary": 10}
    assert stack.detector() == detector, "the drift detector keeps its reference"
    warning = stack.api.events[-1]
    assert (warning["reason"], warning["type"]) == ("RetrainNotPromoted", "Warning")
    assert f"did not promote {uri}; stable untouched" in warning["message"]
    status = httpx.get(f"{stack.url}/status", timeout=10).json()
    assert status["last"]["rollout_outcome"] == "not promoted" and "stable" not in status["last"]
    assert "detector" not in status["last"]


def test_an_unfinished_job_from_before_a_restart_blocks_a_second_run(stack: Stack) -> None:
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    restarted = Trigger(stack.trigger.runner, poll_seconds=0.05)
    answer = restarted.notify([Reason("alertmanager", "ModelDriftPersistent", None)])
    assert answer == {
        "outcome": "duplicate",
        "run": job["metadata"]["name"],
        "message": f"run {job['metadata']['name']} is still going",
    }
    stack.finish(job, {"decision": "refused", "reasons": ["only 12 labelled production rows"]}, failed=True)
    assert stack.trigger.wait(30)


@pytest.mark.parametrize(
    ("summary", "failed", "decision", "event"),
    [
        (
            {"decision": "rejected", "reasons": ["accuracy: challenger 0.49 vs champion 0.50"]},
            True,
            "rejected",
            "RetrainRejected",
        ),
        (
            {"decision": "refused", "reasons": ["only 12 labelled production rows"]},
            True,
            "refused",
            "RetrainRefused",
        ),
        (None, True, "failed", "RetrainFailed"),
    ],
)
def test_a_run_that_does_not_produce_a_challenger_changes_nothing_and_says_why(
    stack: Stack, summary: Obj | None, failed: bool, decision: str, event: str
) -> None:
    before, detector = stack.canary(), stack.detector()
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    if summary is None:
        stack.api.edit(
            "batch/v1",
            "jobs",
            NS,
            job["metadata"]["name"],
            lambda j: j.update(
                status={
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "DeadlineExceeded",
                            "message": "Job was active longer than specified deadline",
                        }
                    ]
                }
            ),
        )
    else:
        stack.finish(job, summary, failed=failed)
    assert stack.trigger.wait(30)
    assert stack.canary() == before, "the canary is untouched"
    assert stack.detector() == detector, "the drift detector is untouched"
    assert [j["metadata"]["name"] for j in stack.jobs()] == [job["metadata"]["name"]], "no rollout run"
    warning = stack.api.events[-1]
    assert (warning["reason"], warning["type"]) == (event, "Warning")
    expected = (
        summary["reasons"][0]
        if summary
        else "DeadlineExceeded: Job was active longer than specified deadline"
    )
    assert expected in warning["message"]
    metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
    assert _metric(metrics, f'retrain_runs_total{{decision="{decision}"}}') == 1
    assert _metric(metrics, 'retrain_canary_updates_total{outcome="updated"}') == 0


def test_a_concurrent_edit_of_the_canary_is_a_conflict_not_an_overwrite(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    gateway = stack.trigger.runner.gateway  # type: ignore[attr-defined]
    real_get = gateway.get

    def get_then_someone_else_edits(kind: Any, name: str) -> Obj:
        """The edit lands between the trigger's read and its patch, every time (not a race with
        the fake server's response, as an after-GET hook in the server thread would be)."""
        obj: Obj = real_get(kind, name)
        if kind.plural == "inferenceservices":
            monkeypatch.setattr(gateway, "get", real_get)
            stack.api.edit(
                kind.group + "/" + kind.version,
                kind.plural,
                NS,
                name,
                lambda o: o["metadata"].setdefault("annotations", {}).update(edited="yes"),
            )
        return obj

    monkeypatch.setattr(gateway, "get", get_then_someone_else_edits)
    stack.finish(
        job, {"decision": "accepted", "version": "v", "storage_uri": "pvc://model-bundles/v", "reasons": []}
    )
    assert stack.trigger.wait(30)
    assert set(_storage_uris(stack.canary()).values()) == {"pvc://model-bundles/mlp"}
    assert stack.canary()["metadata"]["annotations"]["edited"] == "yes"
    assert [e["reason"] for e in stack.api.events][-1] == "RetrainCanaryNotUpdated"
    assert "changed by someone else" in stack.api.events[-1]["message"]
    assert len(stack.jobs()) == 1, "no rollout run"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/alertmanager", {"alerts": "x"}, 400, "needs 'alerts': a list"),
        ("/alertmanager", {"alerts": [{"status": "firing"}]}, 400, "alerts[0] needs 'labels'"),
        ("/", {"data": {}}, 400, "a CloudEvent needs a type"),
    ],
)
def test_bad_notifications_are_400_and_start_nothing(
    stack: Stack, path: str, body: Obj, status: int, message: str
) -> None:
    answer = httpx.post(stack.url + path, json=body, timeout=10)
    assert answer.status_code == status and message in answer.json()["error"]
    assert stack.jobs() == []


def test_other_alerts_and_resolved_ones_are_ignored(stack: Stack) -> None:
    for answer in (stack.alert("ModelServingHighErrorRate"), stack.alert(status="resolved")):
        assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored")
    assert stack.jobs() == []


def test_a_rollout_still_going_blocks_a_second_local_run(tmp_path: Path) -> None:
    """Seen on ``make up``: the detector's drift alert arrived while the first challenger's rollout
    was running; a second run would have swapped the canary under it and started a second rollout."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    runner = LocalRunner(training=sleeper, rollout=sleeper, canary_command="true", state=tmp_path)
    trigger = Trigger(runner, poll_seconds=0.1)
    name = runner.start_rollout("retrain-20260101000000")
    rollout = runner.children["rollout-retrain-20260101000000"]
    try:
        assert name == f"process {rollout.pid} ({' '.join(sleeper[:3])} ...)"
        answer = trigger.notify([Reason("alertmanager", "ModelDriftPersistent", "risk")])
        assert answer == {
            "outcome": "duplicate",
            "run": "rollout-retrain-20260101000000",
            "message": "run rollout-retrain-20260101000000 is still going",
        }
        assert trigger.counters["alerts", "duplicate"] == 1
        assert list(runner.children) == ["rollout-retrain-20260101000000"], "no training started"
    finally:
        rollout.kill()
        assert rollout.wait(10) != 0
    assert runner.busy() is None


def test_a_stable_side_that_does_not_become_ready_keeps_the_traffic_on_the_canary(stack: Stack) -> None:
    """The stable InferenceService took the bundle but its new spec is not Ready (observedGeneration
    behind): the weights stay on the promoted canary, and the Warning says why."""
    stack.trigger.runner.ready_timeout = 0.5  # type: ignore[attr-defined]
    stack.api.edit(
        "serving.kserve.io/v1beta1",
        "inferenceservices",
        NS,
        "model-serving-stable",
        lambda o: (o["metadata"].update(generation=2), o["status"].update(observedGeneration=1)),
    )
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    uri = "pvc://model-bundles/gbm-20261130T150000Z"
    stack.finish(job, {"decision": "accepted", "version": "v", "storage_uri": uri, "reasons": []})
    rollout_job = stack.wait_rollout_job()
    stack.promoted_by_rollout()
    stack.finish(rollout_job, {})
    assert stack.trigger.wait(30)
    assert set(_storage_uris(stack.stable()).values()) == {uri}
    assert stack.weights() == {"stable": 0, "canary": 100}, "the traffic stays where it is served well"
    (container,) = stack.detector()["spec"]["template"]["spec"]["containers"]
    assert [vm.get("subPath") for vm in container["volumeMounts"] if vm["name"] == "model"] == ["gbm"]
    warning = stack.api.events[-1]
    assert (warning["reason"], warning["type"]) == ("RetrainStableNotUpdated", "Warning")
    assert "not Ready 0.5 s after taking the new bundle: generation 2 not observed yet" in warning["message"]
    metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
    assert _metric(metrics, 'retrain_stable_updates_total{outcome="failed"}') == 1


def test_after_a_local_promotion_the_next_run_s_champion_is_the_new_stable_bundle(tmp_path: Path) -> None:
    """The stable command moved the stable programs; the weights cannot be reset here (no stack.json:
    a clear error), but the next training run already starts from the bundle the stable side serves."""
    training = ["python", "-m", "training", "retrain", "--champion", "/b/gbm", "--bundles", "/b"]
    runner = LocalRunner(
        training=training,
        rollout=["true"],
        canary_command="true",
        state=tmp_path,
        stable_command=f"{sys.executable} -c \"print('pvc://model-bundles/gbm')\" {{storage_uri}}",
    )
    with pytest.raises(
        KubeError, match=r"stable serves pvc://model-bundles/gbm-2 but the weights were not reset"
    ):
        runner.promote_stable("pvc://model-bundles/gbm-2")
    assert runner.training[runner.training.index("--champion") + 1] == "/b/gbm-2"


def _promote(stack: Stack, uri: str) -> None:
    """One run: accepted with ``uri``, its `rollout run` promoted; until the trigger has finished."""
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    stack.finish(
        job, {"decision": "accepted", "version": uri.rsplit("/", 1)[-1], "storage_uri": uri, "reasons": []}
    )
    rollout_job = stack.wait_rollout_job()
    stack.promoted_by_rollout()
    stack.finish(rollout_job, {})
    assert stack.trigger.wait(30)


def test_a_concurrent_edit_of_the_drift_detector_is_a_conflict_not_an_overwrite(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = stack.trigger.runner.gateway  # type: ignore[attr-defined]
    real_get = gateway.get

    def get_then_someone_else_edits(kind: Any, name: str) -> Obj:
        obj: Obj = real_get(kind, name)
        if kind.plural == "deployments":
            monkeypatch.setattr(gateway, "get", real_get)
            stack.api.edit("apps/v1", "deployments", NS, name, lambda o: o["spec"].update(replicas=0))
        return obj

    monkeypatch.setattr(gateway, "get", get_then_someone_else_edits)
    uri = "pvc://model-bundles/gbm-20261130T160000Z"
    _promote(stack, uri)
    assert set(_storage_uris(stack.stable()).values()) == {uri}, "the stable side was promoted"
    detector = stack.detector()
    assert detector["spec"]["replicas"] == 0, "the other edit is kept"
    (container,) = detector["spec"]["template"]["spec"]["containers"]
    assert [vm.get("subPath") for vm in container["volumeMounts"] if vm["name"] == "model"] == ["gbm"]
    warning = stack.api.events[-1]
    assert (warning["reason"], warning["type"]) == ("RetrainDetectorNotUpdated", "Warning")
    assert 'deployments.apps "model-serving-drift-detector" was changed by someone else' in warning["message"]
    assert "the detector still reads pvc://model-bundles/gbm" in warning["message"]
    status = httpx.get(f"{stack.url}/status", timeout=10).json()
    assert status["last"]["detector"].startswith("not updated: ")
    metrics = httpx.get(f"{stack.url}/metrics", timeout=10).text
    assert _metric(metrics, 'retrain_detector_updates_total{outcome="failed"}') == 1


def test_alerts_within_the_cooldown_after_a_rejected_run_start_nothing(stack: Stack) -> None:
    assert stack.alert().status_code == 202
    (job,) = stack.jobs()
    run = job["metadata"]["labels"][RUN_LABEL]
    stack.finish(job, {"decision": "rejected", "reasons": ["accuracy: no better"]}, failed=True)
    assert stack.trigger.wait(30)
    for answer in (stack.alert(), stack.alert("ModelAccuracyBelowModelCard")):
        body = answer.json()
        assert (answer.status_code, body["outcome"], body["run"]) == (200, "cooldown", run)
        assert 0 < body["retry_after_seconds"] <= 1800
    status = httpx.get(f"{stack.url}/status", timeout=10).json()
    assert status["cooldown"]["seconds"] == 1800 and 0 < status["cooldown"]["remaining"] <= 1800
    assert status["counters"]["alerts/cooldown"] == 2
    assert len(stack.jobs()) == 1, "nothing started"
    stack.trigger.cooldown_seconds = 0.0
    assert stack.alert().json()["outcome"] == "started", "after the cooldown an alert starts a run again"


def test_a_champion_not_on_a_claim_the_job_mounts_is_refused_with_the_claim_named(stack: Stack) -> None:
    stack.api.edit(
        "serving.kserve.io/v1beta1",
        "inferenceservices",
        NS,
        "model-serving-stable",
        lambda o: [
            e.update(value="pvc://other-claim/gbm")
            for c in o["spec"]["predictor"]["containers"]
            for e in c.get("env", [])
            if e["name"] == "STORAGE_URI"
        ],
    )
    answer = stack.alert()
    assert answer.status_code == 503
    assert (
        "pvc://other-claim/gbm: the retraining Job does not mount claim 'other-claim'"
        in answer.json()["error"]
    )
    assert stack.jobs() == []


def _detector(pod: Obj) -> Obj:
    return {"metadata": {"name": "d", "resourceVersion": "7"}, "spec": {"template": {"spec": pod}}}


def test_a_detector_filled_by_a_storage_initializer_gets_its_uri_replaced() -> None:
    pod = {
        "initContainers": [
            {"name": "storage-initializer", "args": ["s3://b/gbm", "/mnt/models"],
             "volumeMounts": [{"name": "model", "mountPath": "/mnt/models"}]},
        ],
        "containers": [
            {"name": "drift-detector", "args": ["--model_dir", "/mnt/models"],
             "volumeMounts": [{"name": "model", "mountPath": "/mnt/models", "readOnly": True}]},
        ],
        "volumes": [{"name": "model", "emptyDir": {}}],
    }  # fmt: skip
    before, ops = bundle_patch(_detector(pod), "s3://b/gbm-2")
    assert before == "s3://b/gbm"
    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "test", "path": "/spec/template/spec/initContainers/0/args/0", "value": "s3://b/gbm"},
        {"op": "replace", "path": "/spec/template/spec/initContainers/0/args/0", "value": "s3://b/gbm-2"},
    ]
    assert bundle_patch(_detector(pod), "s3://b/gbm") == ("s3://b/gbm", []), "already there: no patch"
    with pytest.raises(KubeError, match=r"storage initializer, which cannot read pvc://c/gbm-2"):
        bundle_patch(_detector(pod), "pvc://c/gbm-2")


def test_a_detector_on_a_claim_without_subpath_gets_one_added() -> None:
    pod = {
        "containers": [
            {"name": "drift-detector", "volumeMounts": [{"name": "model", "mountPath": "/mnt/models"}]}
        ],
        "volumes": [{"name": "model", "persistentVolumeClaim": {"claimName": "gbm-claim"}}],
    }
    before, ops = bundle_patch(_detector(pod), "pvc://bundles/gbm-2")
    assert before == "pvc://gbm-claim"
    assert ops[1:] == [
        {
            "op": "test",
            "path": "/spec/template/spec/volumes/0/persistentVolumeClaim/claimName",
            "value": "gbm-claim",
        },
        {
            "op": "replace",
            "path": "/spec/template/spec/volumes/0/persistentVolumeClaim/claimName",
            "value": "bundles",
        },
        {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/0/subPath", "value": "gbm-2"},
    ]
    with pytest.raises(KubeError, match=r"mounts its bundle from a claim; s3://b/x is not a pvc:// URI"):
        bundle_patch(_detector(pod), "s3://b/x")
