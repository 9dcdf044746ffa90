"""`run`'s state machine on the fake API with scripted analyses (the real-Prometheus run is in
test_rollout_prometheus_e2e.py): promotion, rollback, resume after a crash, pause, outside changes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from rollout.analysis import Metrics, Thresholds
from rollout.errors import (
    EXIT_PROMETHEUS_UNAVAILABLE,
    AnalysisFailedError,
    ConflictError,
    PrometheusUnavailableError,
)
from rollout.kube import connect
from rollout.progressive import STATE_ANNOTATION, Progressive, RunOptions, parse_steps
from rollout.router import DECISION_ANNOTATION, Backend, IstioRouter
from rollout_cluster import CANARY, STABLE, VS, Cluster, Invoke, primary
from support import free_port

GOOD = Metrics(CANARY, requests=500, request_rate=8.3, error_rate=0.0, p50=0.002, p99=0.01, drift=0.0)
BAD = Metrics(CANARY, requests=500, request_rate=8.3, error_rate=0.3, p50=0.002, p99=0.01, drift=0.0)
STABLE_M = Metrics(STABLE, requests=5000, request_rate=83, error_rate=0.0, p50=0.002, p99=0.01, drift=0.0)


class Crash(Exception):
    """Stands for the process being killed mid-rollout."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


@contextmanager
def progressive(
    cluster: Cluster, script: Callable[[int], Metrics], clock: Clock, steps: str = "10,50", **opts: Any
) -> Iterator[tuple[Progressive, list[tuple[int, int]]]]:
    """A Progressive on the fake API; ``script(check_number)`` gives the canary metrics; the
    weights in force at each check are collected."""
    seen: list[tuple[int, int]] = []
    with connect(str(cluster.kubeconfig), None, None) as gateway:
        router = IstioRouter(gateway, VS, Backend(STABLE), Backend(CANARY))

        def analyze() -> tuple[Metrics, Metrics, bool | None]:
            seen.append(cluster.weights())
            return STABLE_M, script(len(seen)), True

        options = RunOptions(parse_steps(steps), interval=30.0, **opts)
        yield Progressive(router, analyze, Thresholds(), options, clock=clock, sleep=clock.sleep), seen


def _decisions(cluster: Cluster) -> list[str]:
    return [e["reason"] for e in cluster.api.events]


def test_steps_parsing() -> None:
    assert parse_steps("5,10,25,50") == [5, 10, 25, 50, 100]
    assert parse_steps("5, 10, 100") == [5, 10, 100]
    for bad in ("", "10,5", "0,10", "10,10", "50,101", "a,b"):
        with pytest.raises(ValueError, match="steps must be"):
            parse_steps(bad)


def test_good_canary_is_promoted_step_by_step(cluster: Cluster) -> None:
    clock = Clock()
    with progressive(cluster, lambda n: GOOD, clock, steps="10,25,50") as (p, seen):
        final = p.run()
    assert final.phase == "succeeded" and cluster.weights() == (0, 100)
    assert seen == [(90, 10), (75, 25), (50, 50)]
    assert clock.slept == [30.0, 30.0, 30.0]
    assert _decisions(cluster) == ["RolloutStart", "RolloutAdvance", "RolloutAdvance", "RolloutPromote"]
    assert cluster.annotation(DECISION_ANNOTATION)["action"] == "promote"
    assert cluster.annotation(STATE_ANNOTATION)["phase"] == "succeeded"


def test_bad_canary_is_held_then_rolled_back(cluster: Cluster) -> None:
    clock = Clock()
    with (
        progressive(cluster, lambda n: BAD, clock, max_failed_checks=3) as (p, seen),
        pytest.raises(AnalysisFailedError, match=r"canary rolled back to 0%: canary error rate 30.00%"),
    ):
        p.run()
    assert seen == [(90, 10)] * 3  # held at the first step, never advanced
    assert cluster.weights() == (100, 0)
    state = cluster.annotation(STATE_ANNOTATION)
    assert state["phase"] == "rolled-back" and state["failed_checks"] == 3
    assert _decisions(cluster) == ["RolloutStart", "RolloutHold", "RolloutHold", "RolloutRollback"]
    rollback_event = cluster.api.events[-1]
    assert rollback_event["type"] == "Warning" and "failed check 3/3" in rollback_event["message"]
    assert cluster.annotation(DECISION_ANNOTATION)["action"] == "rollback"


def test_restart_resumes_at_the_same_step_with_its_failed_checks(cluster: Cluster) -> None:
    clock = Clock()

    def first_life(n: int) -> Metrics:
        if n == 1:
            return GOOD  # 10 -> 50
        if n == 2:
            return BAD  # one failed check at 50
        raise Crash

    with progressive(cluster, first_life, clock, max_failed_checks=3) as (p, _), pytest.raises(Crash):
        p.run()
    assert cluster.weights() == (50, 50)
    state = cluster.annotation(STATE_ANNOTATION)
    assert (state["phase"], state["step"], state["failed_checks"]) == ("progressing", 1, 1)

    clock.now = state["step_started"] + 10  # restarted 10 s into the step's 30 s interval
    clock.slept.clear()
    with progressive(cluster, lambda n: GOOD, clock) as (p, seen):
        final = p.run()
    assert clock.slept == [20.0]  # only what was left of the interval
    assert seen == [(50, 50)]  # resumed at 50%, not started over at 10%
    assert final.phase == "succeeded" and final.failed_checks == 1
    assert cluster.weights() == (0, 100)
    assert _decisions(cluster) == ["RolloutStart", "RolloutAdvance", "RolloutHold", "RolloutPromote"]


def test_prometheus_unavailable_pauses_without_touching_weights(cluster: Cluster) -> None:
    clock = Clock()

    def script(n: int) -> Metrics:
        if n == 2:
            raise PrometheusUnavailableError("Prometheus at http://prom:9090 unreachable")
        return GOOD

    with progressive(cluster, script, clock) as (p, _), pytest.raises(PrometheusUnavailableError):
        p.run()
    assert cluster.weights() == (50, 50)
    decision = cluster.annotation(DECISION_ANNOTATION)
    assert decision["action"] == "pause" and "unreachable" in decision["reason"]
    assert cluster.annotation(STATE_ANNOTATION)["phase"] == "progressing"
    # and a restart carries on
    with progressive(cluster, lambda n: GOOD, clock) as (p, seen):
        assert p.run().phase == "succeeded"
    assert seen == [(50, 50)]


def test_outside_weight_change_stops_the_run(cluster: Cluster) -> None:
    clock = Clock()
    with progressive(cluster, lambda n: GOOD, clock) as (p, seen):
        original_sleep = p.sleep

        def sleep_while_an_sre_moves_weights(s: float) -> None:
            original_sleep(s)

            def change(vs: dict[str, Any]) -> None:
                primary(vs)["route"][0]["weight"] = 70
                primary(vs)["route"][1]["weight"] = 30

            cluster.edit_vs(change)

        p.sleep = sleep_while_an_sre_moves_weights
        with pytest.raises(ConflictError, match=r"canary weight changed outside this run \(10% -> 30%\)"):
            p.run()
    assert seen == [] and cluster.weights() == (70, 30)


def test_resume_refuses_weights_changed_while_stopped_unless_restart(cluster: Cluster) -> None:
    clock = Clock()
    with (
        progressive(cluster, lambda n: (_ for _ in ()).throw(Crash()), clock) as (p, _),
        pytest.raises(Crash),
    ):
        p.run()
    cluster.edit_vs(lambda vs: primary(vs)["route"][0].update(weight=75))
    cluster.edit_vs(lambda vs: primary(vs)["route"][1].update(weight=25))
    with (
        progressive(cluster, lambda n: GOOD, clock) as (p, _),
        pytest.raises(ConflictError, match="--restart"),
    ):
        p.run()
    with progressive(cluster, lambda n: GOOD, clock, restart=True) as (p, seen):
        assert p.run().phase == "succeeded"
    assert seen[0] == (90, 10)


@pytest.mark.parametrize("in_progress", [False, True])
def test_run_with_prometheus_down_exits_8_and_leaves_weights(
    cluster: Cluster, rollout: Invoke, in_progress: bool
) -> None:
    if in_progress:
        cluster.seed(75, 25)
        state = {
            "phase": "progressing",
            "steps": [25, 50, 100],
            "step": 0,
            "failed_checks": 0,
            "step_started": 1.0,
            "revision": 1,
            "reason": "",
        }
        cluster.edit_vs(lambda vs: vs["metadata"].update(annotations={STATE_ANNOTATION: json.dumps(state)}))
    before = cluster.weights()
    r = rollout(
        "run", "--steps", "25,50", "--interval", "1s", "--prometheus-url", f"http://127.0.0.1:{free_port()}"
    )
    assert r.exit_code == EXIT_PROMETHEUS_UNAVAILABLE, r.output
    assert "unreachable" in r.stderr
    assert cluster.weights() == before
    assert not [1 for (m, _, _) in cluster.api.requests if m == "PATCH"]
