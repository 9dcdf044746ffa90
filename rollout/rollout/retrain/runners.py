"""Where a run runs: Kubernetes Jobs from the chart's CronJobs, or local processes (``make up``)."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KubeError, RolloutError
from ..kube import KSERVE, KubeGateway
from ..local import connect_local
from .alerts import Reason
from .canary import point_canary, point_storage, served_uri
from .detector import DEPLOYMENTS, point_detector
from .jobs import RUN_LABEL, TRIGGER_LABEL, JobGateway
from .promotion import back_to_stable, wait_ready
from .trigger import Outcome

__all__ = ["KubeRunner", "LocalRunner"]


def _summary(message: str, fallback: str) -> dict[str, Any]:
    try:
        summary = json.loads(message)
    except ValueError:
        summary = None
    if isinstance(summary, dict) and summary.get("decision"):
        return summary
    return {"decision": "failed", "reasons": [fallback or message or "the run left no summary"]}


def _run_command(template: str, storage_uri: str) -> str:
    """Run a local command template (``{storage_uri}`` filled in); its last line of output."""
    cmd = shlex.split(template.format(storage_uri=storage_uri))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise KubeError(f"{cmd[0]} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


class KubeRunner:
    """Retraining: a Job from CronJob ``retrain_cronjob``; ``rollout run``: one from ``rollout_cronjob``.

    The rollout Job gets ``rollout_args`` appended to its ``rollout run`` (the gates of a
    retraining rollout: ``--ignore-drift --max-accuracy-drop=...``). After a promotion the stable
    InferenceService ``stable`` takes the bundle and VirtualService ``virtual_service`` the traffic
    (both empty: the stable side is left alone), then the drift detector's Deployment
    ``drift_detector`` the bundle (empty: left alone). A run's champion (``--champion`` of its Job)
    is the bundle ``stable`` serves, where the Job mounts it (without ``stable``: the CronJob's).
    """

    def __init__(
        self,
        gateway: KubeGateway,
        *,
        retrain_cronjob: str,
        rollout_cronjob: str,
        canary: str,
        selector: str,
        stable: str = "",
        virtual_service: str = "",
        ready_timeout: float = 900.0,
        rollout_args: Sequence[str] = (),
        drift_detector: str = "",
    ) -> None:
        self.gateway, self.jobs = gateway, JobGateway(gateway)
        self.drift_detector = drift_detector
        self.retrain_cronjob, self.rollout_cronjob = retrain_cronjob, rollout_cronjob
        self.canary, self.selector = canary, selector
        self.stable, self.virtual_service, self.ready_timeout = stable, virtual_service, ready_timeout
        self.rollout_args = list(rollout_args)

    def busy(self) -> str | None:
        """An unfinished retraining Job (``selector``), or an unfinished Job a run started (its
        ``rollout run``: it carries the run label, not the retraining Jobs' labels)."""
        active = self.jobs.active(self.selector) or self.jobs.active(RUN_LABEL)
        return active[0] if active else None

    def start(self, run: str, reason: Reason) -> None:
        champion = served_uri(self.gateway.get(KSERVE, self.stable)) if self.stable else ""
        self.jobs.create_from(
            self.retrain_cronjob,
            self.job_name(run),
            {RUN_LABEL: run, TRIGGER_LABEL: reason.name},
            champion_uri=champion,
        )

    def job_name(self, run: str) -> str:
        return f"{self.retrain_cronjob}-{run.rsplit('-', 1)[-1]}"

    def poll(self, run: str) -> Outcome:
        state = self.jobs.state(self.job_name(run))
        if not state.finished:
            return Outcome(False, {})
        return Outcome(
            True,
            _summary(state.message, "" if state.message else f"Job {state.name} failed without a summary"),
        )

    def point_canary(self, storage_uri: str) -> str:
        before, _ = point_canary(self.gateway, self.canary, storage_uri)
        return before

    def _rollout_job(self, run: str) -> str:
        return f"{self.rollout_cronjob}-{run.rsplit('-', 1)[-1]}"

    def start_rollout(self, run: str) -> str:
        name = self._rollout_job(run)
        self.jobs.create_from(self.rollout_cronjob, name, {RUN_LABEL: run}, self.rollout_args)
        return f"Job {name}"

    def rollout_result(self, run: str) -> bool | None:
        state = self.jobs.state(self._rollout_job(run))
        return state.succeeded if state.finished else None

    def promote_stable(self, storage_uri: str) -> str | None:
        if not (self.stable and self.virtual_service):
            return None
        before, _ = point_storage(self.gateway, self.stable, storage_uri)
        wait_ready(self.gateway, self.stable, self.ready_timeout)
        weights = back_to_stable(
            self.gateway, self.virtual_service, self.stable, self.canary, f"stable {before} -> {storage_uri}"
        )
        return f"stable {before} -> {storage_uri}; {weights}"

    def follow_detector(self, storage_uri: str) -> str | None:
        if not self.drift_detector:
            return None
        before, patched = point_detector(self.gateway, self.drift_detector, storage_uri)
        what = DEPLOYMENTS.describe(self.drift_detector)
        if not patched:
            return f"{what} already reads {storage_uri}"
        return f"{what}: {before} -> {storage_uri} (its pod is replaced; drift windows start empty)"

    def record(self, reason: str, message: str, *, warning: bool = False) -> None:
        try:
            involved = self.gateway.get(KSERVE, self.canary)
            self.gateway.record_event(involved, reason, message, warning=warning)
        except KubeError:
            pass  # Events are a courtesy; the log and the metrics carry the decision too


@dataclass
class LocalRunner:
    """``make up``: training and ``rollout run --router local`` as child processes of the trigger.

    ``canary_command`` (a template with ``{storage_uri}``) moves the local canary onto a bundle;
    ``stable_command`` (the same) the stable side after a promotion, then the weights go back to
    100/0 on the stack's VirtualService (``state``/stack.json); empty: the stable side is left alone;
    ``detector_command`` (the same) then moves the drift detector onto the promoted bundle.
    """

    training: list[str]
    """``python -m training retrain ...`` without ``--result`` (added per run)."""
    rollout: list[str]
    canary_command: str
    state: Path
    stable_command: str = ""
    detector_command: str = ""
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def busy(self) -> str | None:
        """A training run or a ``rollout run`` still going: while a rollout moves the canary, a
        second accepted challenger must not be swapped in under it (nor a second rollout started)."""
        return next((run for run, p in self.children.items() if p.poll() is None), None)

    def _result(self, run: str) -> Path:
        return self.state / "retrain" / f"{run}.json"

    def start(self, run: str, reason: Reason) -> None:
        self._result(run).parent.mkdir(parents=True, exist_ok=True)
        with (self.state / "retrain" / f"{run}.log").open("wb") as log:  # the child keeps its copy
            self.children[run] = subprocess.Popen(
                [*self.training, "--result", str(self._result(run))], stdout=log, stderr=subprocess.STDOUT
            )

    def poll(self, run: str) -> Outcome:
        code = self.children[run].poll()
        if code is None:
            return Outcome(False, {})
        path = self._result(run)
        message = path.read_text() if path.is_file() else ""
        return Outcome(
            True, _summary(message, "" if message else f"training exited {code} without a summary")
        )

    def point_canary(self, storage_uri: str) -> str:
        return _run_command(self.canary_command, storage_uri)

    def rollout_result(self, run: str) -> bool | None:
        code = self.children[f"rollout-{run}"].poll()
        return None if code is None else code == 0

    def promote_stable(self, storage_uri: str) -> str | None:
        if not self.stable_command:
            return None
        before = _run_command(self.stable_command, storage_uri)
        self._follow_champion(storage_uri)
        try:
            with connect_local(self.state) as gateway:
                stack = gateway.stack
                weights = back_to_stable(
                    gateway,
                    stack.virtual_service_name,
                    str(stack.get("stable")),
                    str(stack.get("canary")),
                    f"stable {before} -> {storage_uri}",
                )
        except RolloutError as e:
            raise KubeError(f"stable serves {storage_uri} but the weights were not reset: {e}") from e
        return f"stable {before} -> {storage_uri}; {weights}"

    def follow_detector(self, storage_uri: str) -> str | None:
        if not self.detector_command:
            return None
        before = _run_command(self.detector_command, storage_uri)
        return f"drift detector {before} -> {storage_uri} (restarted; drift windows start empty)"

    def _follow_champion(self, storage_uri: str) -> None:
        """The next run's champion is what the stable side serves now: ``--champion`` becomes
        ``<--bundles>/<version>`` (the local stack maps ``<prefix>/<version>`` there)."""
        if "--champion" in self.training and "--bundles" in self.training:
            bundles = Path(self.training[self.training.index("--bundles") + 1])
            version = storage_uri.rstrip("/").rsplit("/", 1)[-1]
            self.training[self.training.index("--champion") + 1] = str(bundles / version)

    def start_rollout(self, run: str) -> str:
        name = f"rollout-{run}"
        self.state.joinpath("retrain").mkdir(parents=True, exist_ok=True)
        with (self.state / "retrain" / f"{name}.log").open("wb") as log:  # the child keeps its copy
            self.children[name] = subprocess.Popen(self.rollout, stdout=log, stderr=subprocess.STDOUT)
        return f"process {self.children[name].pid} ({' '.join(self.rollout[:3])} ...)"

    def record(self, reason: str, message: str, *, warning: bool = False) -> None:
        line = {"reason": reason, "message": message, "type": "Warning" if warning else "Normal"}
        with (self.state / "retrain" / "events.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")

    def stop(self) -> None:
        for p in self.children.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
