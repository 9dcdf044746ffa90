"""status / set-weight / promote / rollback against the fake API through the real kubernetes client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rollout.errors import (
    EXIT_CONFLICT,
    EXIT_FORBIDDEN,
    EXIT_INVALID,
    EXIT_KUBE_UNAVAILABLE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from rollout.router import DECISION_ANNOTATION
from rollout_cluster import CANARY, NS, STABLE, VS, Cluster, Invoke, host, primary
from support import free_port

NO_PROM = ("--prometheus-url", "")


def test_status_json_shows_weights_hosts_and_readiness(cluster: Cluster, rollout: Invoke) -> None:
    cluster.seed(90, 10, canary_ready=False)
    r = rollout("status", *NO_PROM, "-o", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["virtualService"] == VS and out["namespace"] == NS  # namespace from the kubeconfig context
    assert out["weights"] == {"stable": 90, "canary": 10}
    assert out["hosts"] == {"stable": host(STABLE), "canary": host(CANARY)}
    assert out["resourceVersion"] == cluster.vs()["metadata"]["resourceVersion"]
    assert out["inferenceServices"]["stable"] == {"isvc": STABLE, "ready": True, "message": "Ready"}
    assert out["inferenceServices"]["canary"] == {
        "isvc": CANARY,
        "ready": False,
        "message": "pods crash-looping",
    }
    assert out["metrics"] is None and out["verdict"] is None and out["rollout"] is None


def test_status_table(cluster: Cluster, rollout: Invoke) -> None:
    cluster.seed(75, 25)
    r = rollout("status", *NO_PROM)
    assert r.exit_code == 0, r.output
    assert f"VirtualService {NS}/{VS}" in r.stdout
    weight_row = next(line for line in r.stdout.splitlines() if "weight" in line)
    assert "75%" in weight_row and "25%" in weight_row
    assert "Ready" in r.stdout and host(CANARY) in r.stdout


def _event_reasons(cluster: Cluster) -> list[str]:
    return [e["reason"] for e in cluster.api.events]


@pytest.mark.parametrize("patch_type", ["merge", "json"])
def test_set_weight_patches_only_the_weights_and_records_the_decision(
    cluster: Cluster, rollout: Invoke, patch_type: str
) -> None:
    before = cluster.vs()
    r = rollout("set-weight", "20", "--patch-type", patch_type)
    assert r.exit_code == 0, r.output
    assert "stable 100% / canary 0% -> stable 80% / canary 20%" in r.stdout
    after = cluster.vs()
    assert cluster.weights() == (80, 20)
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["spec"]["http"][:4] == before["spec"]["http"][:4]  # explain and pin routes untouched
    assert {k: v for k, v in primary(after).items() if k != "route"} == {
        k: v for k, v in primary(before).items() if k != "route"
    }  # timeout and retries of primary untouched
    assert after["spec"]["hosts"] == before["spec"]["hosts"]
    decision = cluster.annotation(DECISION_ANNOTATION)
    assert decision["action"] == "set-weight" and (decision["stable"], decision["canary"]) == (80, 20)
    patches = [ct for (m, p, ct) in cluster.api.requests if m == "PATCH"]
    assert patches == [f"application/{'merge-patch' if patch_type == 'merge' else 'json-patch'}+json"]
    assert _event_reasons(cluster) == ["RolloutSetWeight"]
    event = cluster.api.events[0]
    assert event["involvedObject"]["name"] == VS and event["involvedObject"]["kind"] == "VirtualService"
    assert "canary 20%" in event["message"] and event["source"]["component"] == "rollout"


def test_promote_and_rollback(cluster: Cluster, rollout: Invoke) -> None:
    cluster.seed(50, 50)
    r = rollout("promote", "-o", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["before"] == {"stable": 50, "canary": 50} and out["after"] == {"stable": 0, "canary": 100}
    assert cluster.weights() == (0, 100)
    r = rollout("rollback")
    assert r.exit_code == 0, r.output
    assert cluster.weights() == (100, 0)
    assert cluster.annotation(DECISION_ANNOTATION)["action"] == "rollback"
    assert _event_reasons(cluster) == ["RolloutPromote", "RolloutRollback"]


def test_dry_run_prints_the_merge_patch_pinning_resource_version(cluster: Cluster, rollout: Invoke) -> None:
    rv = cluster.vs()["metadata"]["resourceVersion"]
    r = rollout("set-weight", "30", "--dry-run")
    assert r.exit_code == 0, r.output
    patch = json.loads(r.stdout)
    assert patch["metadata"]["resourceVersion"] == rv
    routes = {r["name"]: r for r in patch["spec"]["http"]}
    assert [d["weight"] for d in routes["primary"]["route"]] == [70, 30]
    # a merge patch replaces the whole list: every other route (explain ones first) goes back unchanged
    before = {r["name"]: r for r in cluster.vs()["spec"]["http"]}
    assert (
        list(routes)
        == list(before)
        == ["explain-canary-pin", "explain", "canary-pin", "stable-pin", "primary"]
    )
    assert all(routes[name] == before[name] for name in before if name != "primary")
    assert "dry run" in r.stderr and "merge-patch" in r.stderr
    assert cluster.weights() == (100, 0) and cluster.vs()["metadata"]["resourceVersion"] == rv
    assert not [1 for (m, _, _) in cluster.api.requests if m == "PATCH"] and cluster.api.events == []


def test_dry_run_json_patch_has_test_ops_of_the_weights(cluster: Cluster, rollout: Invoke) -> None:
    r = rollout("promote", "--dry-run", "--patch-type", "json")
    assert r.exit_code == 0, r.output
    ops: list[dict[str, Any]] = json.loads(r.stdout)
    tests = {o["path"]: o["value"] for o in ops if o["op"] == "test"}
    assert tests["/spec/http/4/name"] == "primary"  # found by name, behind the explain and pin routes
    assert tests["/spec/http/4/route/0/destination/host"] == host(STABLE)
    assert tests["/spec/http/4/route/0/weight"] == 100 and tests["/spec/http/4/route/1/weight"] == 0
    replaces = {o["path"]: o["value"] for o in ops if o["op"] == "replace"}
    assert replaces == {"/spec/http/4/route/0/weight": 0, "/spec/http/4/route/1/weight": 100}
    assert cluster.weights() == (100, 0)


@pytest.mark.parametrize("bad", ["101", "-1", "ten", "12.5"])
def test_set_weight_rejects_bad_weights(cluster: Cluster, rollout: Invoke, bad: str) -> None:
    r = rollout("set-weight", "--", bad)
    assert r.exit_code == EXIT_USAGE
    assert "Invalid value for 'WEIGHT'" in r.stderr
    assert cluster.weights() == (100, 0) and cluster.api.requests == []


def test_missing_required_option_is_a_usage_error(cluster: Cluster, rollout: Invoke) -> None:
    r = rollout("set-weight", "10", env={"ROLLOUT_VIRTUAL_SERVICE": ""})
    assert r.exit_code == EXIT_USAGE
    assert "Missing option '--virtual-service'" in r.stderr


@pytest.mark.parametrize(
    "args",
    [("status", *NO_PROM), ("set-weight", "10"), ("promote",), ("rollback",), ("run", "--interval", "1s")],
)
def test_unknown_virtual_service_is_not_found(
    cluster: Cluster, rollout: Invoke, args: tuple[str, ...]
) -> None:
    r = rollout(*args, "--virtual-service", "nope")
    assert r.exit_code == EXIT_NOT_FOUND, r.output
    assert 'virtualservices.networking.istio.io "nope" not found' in r.stderr


def test_unknown_namespace_is_not_found(cluster: Cluster, rollout: Invoke) -> None:
    r = rollout("set-weight", "10", "-n", "elsewhere")
    assert r.exit_code == EXIT_NOT_FOUND and "not found" in r.stderr


@pytest.mark.parametrize("command", [("promote",), ("rollback",)])
def test_stale_resource_version_is_a_conflict_for_promote_and_rollback(
    cluster: Cluster, rollout: Invoke, command: tuple[str, ...]
) -> None:
    cluster.seed(50, 50)
    seen = cluster.vs()["metadata"]["resourceVersion"]
    cluster.edit_vs(lambda vs: vs["metadata"].setdefault("labels", {}).update(team="sre"))
    r = rollout(*command, "--resource-version", seen)
    assert r.exit_code == EXIT_CONFLICT, r.output
    assert "was changed by someone else" in r.stderr and cluster.weights() == (50, 50)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--steps", "10,5"), "steps must be strictly increasing integers from 1 to 100"),
        (("run", "--steps", "10,101"), "steps must be strictly increasing"),
        (("run", "--interval", "0s"), "must be positive"),
        (("run", "--interval", "soon"), "is not a duration"),
        (("run", "--window", "5x"), "is not a PromQL range"),
        (
            ("analyze", "--metric-filter", "caller!=explainer"),
            "'caller!=explainer' is not a list of PromQL label matchers (e.g. caller!=\"explainer\")",
        ),
        (("run", "--max-failed-checks", "0"), "0 is not in the range x>=1"),
        (("run", "--prometheus-url", ""), "run needs Prometheus"),
        (("run", "--max-error-rate", "2"), "2.0 is not in the range 0<=x<=1"),
        (("status", "-o", "yaml"), "'yaml' is not one of 'table', 'json'"),
        (("set-weight", "10", "--patch-type", "strategic"), "'strategic' is not one of 'merge', 'json'"),
        (("analyze", "--prometheus-url", ""), "analyze needs Prometheus"),
        (("promote", "extra"), "Got unexpected extra argument"),
    ],
)
def test_bad_options_are_usage_errors(
    cluster: Cluster, rollout: Invoke, args: tuple[str, ...], message: str
) -> None:
    r = rollout(*args)
    assert r.exit_code == EXIT_USAGE, r.output
    assert message in r.stderr
    assert cluster.weights() == (100, 0) and not [1 for (m, _, _) in cluster.api.requests if m == "PATCH"]


def test_stale_resource_version_is_a_conflict(cluster: Cluster, rollout: Invoke) -> None:
    seen = json.loads(rollout("status", *NO_PROM, "-o", "json").stdout)["resourceVersion"]
    cluster.edit_vs(
        lambda vs: vs["metadata"].setdefault("labels", {}).update(team="sre")
    )  # someone else writes
    r = rollout("set-weight", "40", "--resource-version", seen)
    assert r.exit_code == EXIT_CONFLICT, r.output
    assert "was changed by someone else since it was read" in r.stderr and "nothing was written" in r.stderr
    assert "the object has been modified" in r.stderr
    assert cluster.weights() == (100, 0)
    # with the fresh resourceVersion it goes through
    fresh = cluster.vs()["metadata"]["resourceVersion"]
    assert rollout("set-weight", "40", "--resource-version", fresh).exit_code == 0
    assert cluster.weights() == (60, 40)


def test_stale_resource_version_with_json_patch_is_a_conflict(cluster: Cluster, rollout: Invoke) -> None:
    seen = cluster.vs()["metadata"]["resourceVersion"]
    cluster.edit_vs(lambda vs: vs["metadata"].setdefault("labels", {}).update(team="sre"))
    r = rollout("set-weight", "40", "--resource-version", seen, "--patch-type", "json")
    assert r.exit_code == EXIT_CONFLICT, r.output
    assert "JSON-patch test failed" in r.stderr and cluster.weights() == (100, 0)


def _concurrent_weight_change(cluster: Cluster) -> None:
    """Between the CLI's read and its patch, another client moves the weights to 60/40."""
    fired: list[bool] = []

    def after_get(key: tuple[str, str, str, str]) -> None:
        if key[1] == "virtualservices" and not fired:
            fired.append(True)

            def change(vs: dict[str, Any]) -> None:
                primary(vs)["route"][0]["weight"] = 60
                primary(vs)["route"][1]["weight"] = 40

            cluster.edit_vs(change)

    cluster.api.after_get = after_get


@pytest.mark.parametrize("patch_type", ["merge", "json"])
def test_concurrent_edit_is_never_overwritten(cluster: Cluster, rollout: Invoke, patch_type: str) -> None:
    _concurrent_weight_change(cluster)
    r = rollout("set-weight", "5", "--patch-type", patch_type)
    assert r.exit_code == EXIT_CONFLICT, r.output
    assert "Re-run the command" in r.stderr
    assert cluster.weights() == (60, 40)  # the other client's change survived
    assert cluster.api.events == []


def test_json_patch_tolerates_unrelated_concurrent_edits(cluster: Cluster, rollout: Invoke) -> None:
    fired: list[bool] = []

    def after_get(key: tuple[str, str, str, str]) -> None:
        if key[1] == "virtualservices" and not fired:
            fired.append(True)
            cluster.edit_vs(lambda vs: vs["metadata"].setdefault("labels", {}).update(team="sre"))

    cluster.api.after_get = after_get
    r = rollout("set-weight", "5", "--patch-type", "json")
    assert r.exit_code == 0, r.output
    assert cluster.weights() == (95, 5) and cluster.vs()["metadata"]["labels"]["team"] == "sre"


def _without_primary(vs: dict[str, Any]) -> None:
    vs["spec"]["http"] = [r for r in vs["spec"]["http"] if r["name"] != "primary"]


def _one_destination(vs: dict[str, Any]) -> None:
    primary(vs)["route"] = [{"destination": {"host": host(STABLE)}, "weight": 100}]


def _foreign_hosts(vs: dict[str, Any]) -> None:
    primary(vs)["route"][1]["destination"]["host"] = "other-model-predictor.models.svc.cluster.local"


def _bad_sum(vs: dict[str, Any]) -> None:
    primary(vs)["route"][1]["weight"] = 20


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _without_primary,
            "has no http route named 'primary' "
            "(its routes: explain-canary-pin, explain, canary-pin, stable-pin)",
        ),
        (_one_destination, "has 1 destination(s)"),
        (_foreign_hosts, "do not split into one stable host"),
        (_bad_sum, "weights must sum to 100"),
    ],
)
@pytest.mark.parametrize(
    "args",
    [("status", *NO_PROM), ("set-weight", "10"), ("promote",), ("rollback",), ("run", "--interval", "1s")],
)
def test_virtual_service_without_the_two_routes_is_refused(
    cluster: Cluster, rollout: Invoke, change: Any, message: str, args: tuple[str, ...]
) -> None:
    cluster.edit_vs(change)
    before = cluster.vs()
    r = rollout(*args)
    assert r.exit_code == EXIT_INVALID, r.output
    assert f'VirtualService "{VS}"' in r.stderr and message in r.stderr
    assert cluster.vs() == before


def test_host_substrings_select_the_destinations(cluster: Cluster, rollout: Invoke) -> None:
    r = rollout(
        "set-weight",
        "10",
        "--stable",
        "a",
        "--canary",
        "b",
        "--stable-host",
        "-stable-",
        "--canary-host",
        "-canary-",
    )
    assert r.exit_code == 0, r.output
    assert cluster.weights() == (90, 10)


def test_wrong_token_is_forbidden(cluster: Cluster, rollout: Invoke) -> None:
    cluster.kubeconfig.write_text(cluster.kubeconfig.read_text().replace("fake-token", "stolen"))
    r = rollout("set-weight", "10")
    assert r.exit_code == EXIT_FORBIDDEN and "not allowed" in r.stderr


def test_api_server_down(cluster: Cluster, rollout: Invoke) -> None:
    cluster.kubeconfig.write_text(
        cluster.kubeconfig.read_text().replace(cluster.api.url, f"http://127.0.0.1:{free_port()}")
    )
    r = rollout("rollback")
    assert r.exit_code == EXIT_KUBE_UNAVAILABLE and "Kubernetes API unreachable" in r.stderr


def test_manual_change_interrupts_a_rollout_in_progress(cluster: Cluster, rollout: Invoke) -> None:
    state = {
        "phase": "progressing",
        "steps": [10, 50, 100],
        "step": 0,
        "failed_checks": 0,
        "step_started": 1.0,
        "revision": 1,
        "reason": "",
    }
    cluster.seed(90, 10)
    cluster.edit_vs(
        lambda vs: vs["metadata"].update(annotations={"rollout.model-serving/state": json.dumps(state)})
    )
    assert rollout("rollback").exit_code == 0
    assert cluster.annotation("rollout.model-serving/state")["phase"] == "interrupted"
    assert cluster.annotation("rollout.model-serving/state")["reason"] == "rollout rollback"


def test_status_with_prometheus_down_still_shows_weights_and_exits_8(
    cluster: Cluster, rollout: Invoke
) -> None:
    r = rollout("status", "--prometheus-url", f"http://127.0.0.1:{free_port()}", "-o", "json")
    assert r.exit_code == 8, r.output
    out = json.loads(r.stdout)
    assert out["weights"] == {"stable": 100, "canary": 0} and out["metrics"] is None
    assert "unreachable" in out["prometheusError"] and "unreachable" in r.stderr
