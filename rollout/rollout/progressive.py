"""`rollout run`: progressive delivery driven by canary analysis, resumable from the VirtualService.

The state lives in the annotation ``rollout.model-serving/state`` (JSON: phase, steps, step index,
failed checks, when the current step started, a revision), written in the same guarded patch as the
weights. A restarted run reads it and continues at the same step, waiting out what is left of the
step's interval. Each decision (start, advance, hold, promote, rollback, pause) is logged, written to
``rollout.model-serving/last-decision`` and recorded as a Kubernetes Event on the VirtualService.

At each step, after ``interval`` seconds, the analysis runs: pass -> next step (the step that reaches
100 is the promotion); fail -> hold and count a failed check; ``max_failed_checks`` failed checks ->
canary weight 0 and :class:`~rollout.errors.AnalysisFailedError`. Prometheus unreachable ->
:class:`~rollout.errors.PrometheusUnavailableError` with the weights untouched (a restart resumes).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .analysis import Metrics, Thresholds, Verdict, judge
from .errors import AnalysisFailedError, ConflictError, KubeError, PrometheusUnavailableError
from .router import ANNOTATION_PREFIX, DECISION_ANNOTATION, IstioRouter, Routes, Weights, decision

__all__ = ["STATE_ANNOTATION", "Progressive", "RunOptions", "RunState", "parse_steps"]

log = logging.getLogger("rollout.run")
STATE_ANNOTATION = f"{ANNOTATION_PREFIX}/state"
PROGRESSING, SUCCEEDED, ROLLED_BACK, INTERRUPTED = "progressing", "succeeded", "rolled-back", "interrupted"
Analyze = Callable[[], tuple[Metrics, Metrics, bool | None]]


def parse_steps(text: str) -> list[int]:
    """``"5,10,25,50"`` -> ``[5, 10, 25, 50, 100]``: strictly increasing integers 1-100, ending at 100."""
    try:
        steps = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError as e:
        raise ValueError(f"steps must be comma-separated integers, got {text!r}") from e
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ValueError(f"steps must be strictly increasing integers from 1 to 100, got {text!r}")
    return steps if steps[-1] == 100 else [*steps, 100]


def now_iso(clock: Callable[[], float]) -> str:
    return dt.datetime.fromtimestamp(clock(), dt.UTC).isoformat(timespec="seconds")


@dataclass
class RunState:
    phase: str
    steps: list[int]
    step: int
    failed_checks: int
    step_started: float
    revision: int = 0
    reason: str = ""

    @property
    def weight(self) -> int:
        return self.steps[self.step]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_annotations(cls, annotations: dict[str, str]) -> RunState | None:
        raw = annotations.get(STATE_ANNOTATION)
        if not raw:
            return None
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError):
            log.warning("ignoring an unreadable %s annotation: %r", STATE_ANNOTATION, raw[:200])
            return None


@dataclass(frozen=True)
class RunOptions:
    steps: list[int]
    interval: float = 60.0
    max_failed_checks: int = 3
    restart: bool = False


@dataclass
class Progressive:
    router: IstioRouter
    analyze: Analyze
    thresholds: Thresholds
    options: RunOptions
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    on_check: Callable[[Metrics, Metrics, Verdict], None] | None = None
    preflight: Callable[[], None] | None = None
    state: RunState | None = field(default=None, init=False)

    def run(self) -> RunState:
        """Drive the rollout to its end: the final (succeeded) state, or raise (rolled back, paused...)."""
        routes = self.router.get_routes()
        if self.preflight is not None:
            self.preflight()  # e.g. Prometheus reachable: fail before the first write, weights untouched
        found = RunState.from_annotations(routes.annotations)
        if found and found.phase == PROGRESSING and not self.options.restart:
            if routes.weights.canary != found.weight:
                raise ConflictError(
                    f"the rollout state says canary {found.weight}% "
                    f"(step {found.step + 1}/{len(found.steps)}) but the VirtualService has "
                    f"{routes.weights.canary}%: weights were changed outside `rollout run`. "
                    "Use --restart to start over from the first step."
                )
            self.state = found
            self._log(
                "resume",
                f"resuming at step {found.step + 1}/{len(found.steps)} (canary {found.weight}%, "
                f"{found.failed_checks} failed checks)",
            )
        else:
            first = RunState(PROGRESSING, self.options.steps, 0, 0, self.clock())
            if first.weight == 100:
                self._write(
                    routes, replace(first, phase=SUCCEEDED), "promote", "single step: canary promoted to 100%"
                )
                return self._final()
            routes = self._write(routes, first, "start", f"starting the rollout at canary {first.weight}%")
        assert self.state is not None
        while True:
            wait = self.state.step_started + self.options.interval - self.clock()
            if wait > 0:
                self.sleep(wait)
            routes = self._reread()
            try:
                stable, canary, ready = self.analyze()
            except PrometheusUnavailableError as e:
                self._record(
                    routes, None, "pause", f"analysis impossible, weights unchanged: {e}", warning=True
                )
                raise
            verdict = judge(stable, canary, self.thresholds, ready)
            if self.on_check:
                self.on_check(stable, canary, verdict)
            st = self.state
            if verdict.ok:
                nxt = replace(st, step=st.step + 1, step_started=self.clock(), reason="")
                if nxt.weight == 100:
                    self._write(
                        routes,
                        replace(nxt, phase=SUCCEEDED),
                        "promote",
                        f"analysis passed at canary {st.weight}%; canary promoted to 100%",
                    )
                    return self._final()
                routes = self._write(
                    routes, nxt, "advance", f"analysis passed; canary {st.weight}% -> {nxt.weight}%"
                )
                continue
            failed = st.failed_checks + 1
            reason = "; ".join(verdict.reasons)
            if failed >= self.options.max_failed_checks:
                done = replace(
                    st, phase=ROLLED_BACK, failed_checks=failed, reason=reason, step_started=self.clock()
                )
                msg = (
                    f"failed check {failed}/{self.options.max_failed_checks} at canary {st.weight}%: "
                    f"{reason}; rolled back to stable"
                )
                self._write(routes, done, "rollback", msg, weights=Weights(100, 0), warning=True)
                raise AnalysisFailedError(f"canary rolled back to 0%: {reason}")
            held = replace(st, failed_checks=failed, reason=reason, step_started=self.clock())
            self._write(
                routes,
                held,
                "hold",
                f"failed check {failed}/{self.options.max_failed_checks} at canary "
                f"{st.weight}%: {reason}; holding",
                warning=True,
            )

    # ------------------------------------------------------------------------------------------
    def _final(self) -> RunState:
        assert self.state is not None
        return self.state

    def _reread(self) -> Routes:
        routes = self.router.get_routes()
        found = RunState.from_annotations(routes.annotations)
        if found != self.state:
            raise ConflictError(
                "the rollout state on the VirtualService changed outside this run "
                f"(now: {found.to_json() if found else 'none'}); stopping without changing weights"
            )
        assert self.state is not None
        if routes.weights.canary != self.state.weight:
            raise ConflictError(
                "the canary weight changed outside this run "
                f"({self.state.weight}% -> {routes.weights.canary}%); "
                "stopping without changing weights"
            )
        return routes

    def _write(
        self,
        routes: Routes,
        state: RunState,
        action: str,
        reason: str,
        *,
        weights: Weights | str | None = "from-state",
        warning: bool = False,
    ) -> Routes:
        state = replace(state, revision=(self.state.revision + 1 if self.state else 0))
        target = Weights.canary_at(state.weight) if weights == "from-state" else weights
        assert target is None or isinstance(target, Weights)
        new = self._record(routes, target, action, reason, state=state, warning=warning)
        self.state = state
        return new

    def _record(
        self,
        routes: Routes,
        weights: Weights | None,
        action: str,
        reason: str,
        *,
        state: RunState | None = None,
        warning: bool = False,
    ) -> Routes:
        shown = weights or routes.weights
        extra: dict[str, Any] = {"by": "rollout run"}
        annotations: dict[str, str | None] = {
            DECISION_ANNOTATION: decision(action, shown, reason, now_iso(self.clock), **extra)
        }
        if state is not None:
            annotations[STATE_ANNOTATION] = state.to_json()
        _, written = self.router.set_routes(routes, weights, annotations)
        assert written is not None
        self._log(action, reason, warning=warning, weights=shown)
        try:
            self.router.record(written, f"Rollout{action.capitalize()}", reason, warning=warning)
        except KubeError as e:
            log.warning("could not record an Event (%s); the decision is on the annotation", e)
        return written

    def _log(
        self, action: str, reason: str, *, warning: bool = False, weights: Weights | None = None
    ) -> None:
        split = f" [stable {weights.stable}% / canary {weights.canary}%]" if weights else ""
        log.log(logging.WARNING if warning else logging.INFO, "%s: %s%s", action, reason, split)
