"""One retraining run at a time: alert -> run -> decision -> canary + ``rollout run`` -> stable, or nothing.

:class:`Trigger` owns the decision path and its counters; a :class:`Runner` does the work where it
runs (:class:`rollout.retrain.runners.KubeRunner`: Jobs from the chart's CronJobs;
:class:`rollout.retrain.runners.LocalRunner`: processes for ``make up``). A second alert while a
run is going (in this process, or an unfinished Job found in the API) starts nothing and is
counted as ``duplicate``; a run lasts until the ``rollout run`` it started has ended. When that
rollout promoted the challenger (canary at 100 %), the stable InferenceService takes the new
bundle and the traffic back (:mod:`rollout.retrain.promotion`), then the drift detector the new
bundle's reference (:mod:`rollout.retrain.detector`), so the population that caused the run stops
counting as drift; when it rolled back, the stable side is untouched. A rejected, refused or failed
run changes nothing and says why (log, Event, ``retrain_runs_total{decision}``).

Cooling-off: an alert within ``cooldown_seconds`` after a run ended starts nothing (answered 200,
``outcome: cooldown``, counted): the alert rules look back an hour, so they still fire on the
windows that caused the run until new, undrifted windows outweigh them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import KubeError
from .alerts import Reason

__all__ = ["Outcome", "Runner", "Trigger"]

log = logging.getLogger("rollout.retrain")


@dataclass(frozen=True)
class Outcome:
    finished: bool
    summary: dict[str, Any]
    """The training run's summary (``decision``, ``version``, ``storage_uri``, ``reasons``)."""


class Runner(Protocol):
    def busy(self) -> str | None:
        """The name of an unfinished run started elsewhere (or before a restart), else None."""

    def start(self, run: str, reason: Reason) -> None: ...

    def poll(self, run: str) -> Outcome: ...

    def point_canary(self, storage_uri: str) -> str:
        """Point the canary at ``storage_uri``; returns what it served before."""

    def start_rollout(self, run: str) -> str:
        """Start ``rollout run``; returns a name for it."""

    def rollout_result(self, run: str) -> bool | None:
        """The ``rollout run`` of ``run``: None while it goes, True when it promoted the canary."""

    def promote_stable(self, storage_uri: str) -> str | None:
        """The stable side takes ``storage_uri`` and the traffic back (weights 100/0); returns what
        was done, or None when this runner leaves the stable side alone (not configured)."""

    def follow_detector(self, storage_uri: str) -> str | None:
        """The drift detector judges against ``storage_uri`` (its reference sample and scores);
        returns what was done, or None when this runner leaves the detector alone."""

    def record(self, reason: str, message: str, *, warning: bool = False) -> None: ...


@dataclass
class Trigger:
    runner: Runner
    poll_seconds: float = 10.0
    deadline_seconds: float = 7200.0
    cooldown_seconds: float = 0.0
    """Alerts within this many seconds after a run ended start nothing (``cooldown``)."""
    counters: Counter[tuple[str, str]] = field(default_factory=Counter)
    last: dict[str, Any] = field(default_factory=dict)
    current: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _stamp: dt.datetime | None = None
    """The time in the newest run id: ids (and so Job names) never repeat, even within a second."""
    _ended: tuple[str, float] | None = None
    """The last run that ended here and when (``time.monotonic()``)."""
    _stop: threading.Event = field(default_factory=threading.Event)

    def notify(self, reasons: list[Reason]) -> dict[str, Any]:
        """Start a run for the first reason unless one is going; the answer says what happened."""
        if not reasons:
            self.counters["alerts", "ignored"] += 1
            return {"outcome": "ignored", "message": "no firing retraining alert in this notification"}
        with self._lock:
            running = self.current or self.runner.busy()
            if running:
                self.counters["alerts", "duplicate"] += 1
                log.info("alert %s: run %s is still going; no second run", reasons[0].name, running)
                return {"outcome": "duplicate", "run": running, "message": f"run {running} is still going"}
            if self._ended is not None:
                ended_run, at = self._ended
                ago = time.monotonic() - at
                if ago < self.cooldown_seconds:
                    self.counters["alerts", "cooldown"] += 1
                    left = self.cooldown_seconds - ago
                    log.info(
                        "alert %s: run %s ended %.0f s ago, cooling off %.0f s more; no run",
                        reasons[0].name,
                        ended_run,
                        ago,
                        left,
                    )
                    return {
                        "outcome": "cooldown",
                        "run": ended_run,
                        "message": f"run {ended_run} ended {ago:.0f} s ago; alerts start nothing for "
                        f"{self.cooldown_seconds:g} s after a run (cooldown), {left:.0f} s left",
                        "retry_after_seconds": round(left, 1),
                    }
            run = self._new_run_id()
            self.runner.start(run, reasons[0])
            self.current = run
            self.counters["alerts", "started"] += 1
            self._thread = threading.Thread(target=self._follow, args=(run,), name=run, daemon=True)
            self._thread.start()
        log.info("alert %s (%s): started %s", reasons[0].name, reasons[0].source, run)
        self.runner.record("RetrainStarted", f"{run} started by {reasons[0].source} {reasons[0].name}")
        return {"outcome": "started", "run": run}

    def _new_run_id(self) -> str:
        stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
        if self._stamp is not None and stamp <= self._stamp:
            stamp = self._stamp + dt.timedelta(seconds=1)
        self._stamp = stamp
        return f"retrain-{stamp:%Y%m%d%H%M%S}"

    def wait(self, timeout: float) -> bool:
        """Wait (bounded) for the current run's follow-up to end; True when it ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self.wait(10.0)

    def _follow(self, run: str) -> None:
        try:
            summary = self._await(run)
            self._decide(run, summary)
        except Exception as e:  # the follow-up must always release the run and say why
            log.exception("run %s: follow-up failed", run)
            self._count_decision(run, "failed", [f"{type(e).__name__}: {e}"])
            self.runner.record("RetrainFailed", f"{run}: {e}", warning=True)
        finally:
            with self._lock:
                self.current = None
                self._ended = (run, time.monotonic())

    def _await(self, run: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.deadline_seconds
        while not self._stop.is_set():
            outcome = self.runner.poll(run)
            if outcome.finished:
                return outcome.summary
            if time.monotonic() > deadline:
                return {"decision": "failed", "reasons": [f"no outcome within {self.deadline_seconds:g} s"]}
            self._stop.wait(self.poll_seconds)
        return {"decision": "failed", "reasons": ["the trigger stopped before the run finished"]}

    def _count_decision(self, run: str, decision: str, reasons: list[str], **extra: Any) -> None:
        self.counters["runs", decision] += 1
        self.last = {"run": run, "decision": decision, "reasons": reasons, "at": time.time(), **extra}

    def _decide(self, run: str, summary: dict[str, Any]) -> None:
        decision = str(summary.get("decision") or "failed")
        reasons = [str(r) for r in summary.get("reasons") or []]
        if decision != "accepted":
            self._count_decision(run, decision, reasons)
            log.warning("run %s %s; nothing changed: %s", run, decision, "; ".join(reasons))
            self.runner.record(
                f"Retrain{decision.capitalize()}",
                f"{run} {decision}, nothing changed: {'; '.join(reasons)}",
                warning=True,
            )
            return
        uri = str(summary.get("storage_uri") or "")
        if not uri:
            self._count_decision(
                run, "failed", ["accepted without a storage URI (training --storage-prefix unset)"]
            )
            self.runner.record("RetrainFailed", f"{run}: accepted without a storage URI", warning=True)
            return
        try:
            before = self.runner.point_canary(uri)
        except KubeError as e:
            self.counters["canary", "failed"] += 1
            self._count_decision(
                run, "accepted", reasons, version=summary.get("version"), canary=f"not updated: {e}"
            )
            log.error("run %s accepted %s but the canary was not updated: %s", run, uri, e)
            self.runner.record("RetrainCanaryNotUpdated", f"{run}: {uri}: {e}", warning=True)
            return
        self.counters["canary", "updated"] += 1
        rollout = self.runner.start_rollout(run)
        self._count_decision(
            run,
            "accepted",
            reasons,
            version=summary.get("version"),
            canary=uri,
            previous=before,
            rollout=rollout,
        )
        log.info("run %s accepted: canary %s -> %s; %s started", run, before, uri, rollout)
        self.runner.record("RetrainPromotedToCanary", f"{run}: canary {before} -> {uri}; {rollout} started")
        self._finish_rollout(run, uri, rollout)

    def _finish_rollout(self, run: str, uri: str, rollout: str) -> None:
        """Follow ``rollout run`` to its end; a promotion ends with the stable side on ``uri``."""
        deadline = time.monotonic() + self.deadline_seconds
        promoted = self.runner.rollout_result(run)
        while promoted is None:
            if self._stop.is_set() or time.monotonic() > deadline:
                self.last["rollout_outcome"] = "unknown"
                log.warning("run %s: %s did not end while followed; stable untouched", run, rollout)
                return
            self._stop.wait(self.poll_seconds)
            promoted = self.runner.rollout_result(run)
        if not promoted:
            self.counters["stable", "unchanged"] += 1
            self.last["rollout_outcome"] = "not promoted"
            log.warning("run %s: %s did not promote %s; stable untouched", run, rollout, uri)
            self.runner.record(
                "RetrainNotPromoted",
                f"{run}: {rollout} did not promote {uri}; stable untouched",
                warning=True,
            )
            return
        self.last["rollout_outcome"] = "promoted"
        try:
            done = self.runner.promote_stable(uri)
        except KubeError as e:
            self.counters["stable", "failed"] += 1
            self.last["stable"] = f"not updated: {e}"
            log.error("run %s: canary promoted but the stable side did not take %s: %s", run, uri, e)
            self.runner.record("RetrainStableNotUpdated", f"{run}: {uri}: {e}", warning=True)
            return
        if done is None:
            self.last["stable"] = "unchanged (no stable update configured)"
            return
        self.counters["stable", "updated"] += 1
        self.last["stable"] = uri
        log.info("run %s promoted: stable now serves %s; %s", run, uri, done)
        self.runner.record("RetrainPromoted", f"{run}: stable now serves {uri}; {done}")
        self._follow_detector(run, uri)

    def _follow_detector(self, run: str, uri: str) -> None:
        """The stable side serves ``uri``: the drift detector judges against it from now on."""
        try:
            done = self.runner.follow_detector(uri)
        except KubeError as e:
            self.counters["detector", "failed"] += 1
            self.last["detector"] = f"not updated: {e}"
            log.error("run %s: the drift detector still judges against the old bundle: %s", run, e)
            self.runner.record("RetrainDetectorNotUpdated", f"{run}: {uri}: {e}", warning=True)
            return
        if done is None:
            self.last["detector"] = "unchanged (no detector update configured)"
            return
        self.counters["detector", "updated"] += 1
        self.last["detector"] = uri
        log.info("run %s: the drift detector judges against %s now; %s", run, uri, done)
        self.runner.record("RetrainDetectorUpdated", f"{run}: drift reference now {uri}; {done}")

    def metrics(self) -> str:
        """Prometheus text exposition of the counters."""
        lines = [
            "# HELP retrain_alerts_total Notifications received, by what they did.",
            "# TYPE retrain_alerts_total counter",
            *[
                f'retrain_alerts_total{{outcome="{o}"}} {self.counters["alerts", o]}'
                for o in ("started", "duplicate", "cooldown", "ignored")
            ],
            "# HELP retrain_runs_total Finished retraining runs, by decision.",
            "# TYPE retrain_runs_total counter",
            *[
                f'retrain_runs_total{{decision="{d}"}} {self.counters["runs", d]}'
                for d in ("accepted", "rejected", "refused", "unavailable", "failed")
            ],
            "# HELP retrain_canary_updates_total Canary InferenceService updates after accepted runs.",
            "# TYPE retrain_canary_updates_total counter",
            *[
                f'retrain_canary_updates_total{{outcome="{o}"}} {self.counters["canary", o]}'
                for o in ("updated", "failed")
            ],
            "# HELP retrain_stable_updates_total Stable InferenceService updates after promoted rollouts.",
            "# TYPE retrain_stable_updates_total counter",
            *[
                f'retrain_stable_updates_total{{outcome="{o}"}} {self.counters["stable", o]}'
                for o in ("updated", "unchanged", "failed")
            ],
            "# HELP retrain_detector_updates_total Drift detector moves onto a promoted bundle.",
            "# TYPE retrain_detector_updates_total counter",
            *[
                f'retrain_detector_updates_total{{outcome="{o}"}} {self.counters["detector", o]}'
                for o in ("updated", "failed")
            ],
            "# HELP retrain_run_in_progress 1 while a retraining run (or the rollout it started) is going.",
            "# TYPE retrain_run_in_progress gauge",
            f"retrain_run_in_progress {1 if self.current else 0}",
        ]
        return "\n".join(lines) + "\n"

    def status(self) -> dict[str, Any]:
        counters = {f"{a}/{b}": n for (a, b), n in self.counters.items()}
        cooldown: dict[str, Any] = {"seconds": self.cooldown_seconds, "remaining": 0.0}
        if self._ended is not None:
            left = self.cooldown_seconds - (time.monotonic() - self._ended[1])
            cooldown["remaining"] = round(max(0.0, left), 1)
        return {"current": self.current, "last": dict(self.last), "counters": counters, "cooldown": cooldown}
