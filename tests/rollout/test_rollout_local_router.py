"""``--router local``: the same commands, guards and exit codes on the VirtualService file of ``make up``.

The local stack is described by a ``stack.json`` and the chart's rendered VirtualService
(``manifests/base``) as its file; no stack runs here (readiness probes point at a closed port).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from rollout.cli import cli
from rollout.errors import ConflictError
from rollout.kube import ISTIO
from rollout.local import LocalGateway, LocalStack
from rollout.router import Backend, IstioRouter, Weights
from support import REPO, free_port

BASE_VS = REPO / "manifests" / "base" / "virtualservice-model-serving.yaml"


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    vs = yaml.safe_load(BASE_VS.read_text())
    vs["metadata"]["resourceVersion"] = "1"
    (tmp_path / "virtualservice.yaml").write_text(yaml.safe_dump(vs, sort_keys=False))
    closed = free_port()
    (tmp_path / "stack.json").write_text(
        json.dumps(
            {
                "namespace": "model-serving",
                "virtualService": {"name": "model-serving", "file": str(tmp_path / "virtualservice.yaml")},
                "stable": "model-serving-stable",
                "canary": "model-serving-canary",
                "prometheus": "",
                "inferenceServices": {
                    "model-serving-stable": {"ready": []},
                    "model-serving-canary": {"ready": [f"http://127.0.0.1:{closed}/v2/models/m/ready"]},
                },
            }
        )
    )
    return tmp_path


def run(stack_dir: Path, *args: str) -> Result:
    env = {"ROLLOUT_ROUTER": "local", "ROLLOUT_LOCAL_STACK": str(stack_dir)}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def stored(stack_dir: Path) -> dict:  # type: ignore[type-arg]
    vs: dict = yaml.safe_load((stack_dir / "virtualservice.yaml").read_text())  # type: ignore[type-arg]
    return vs


def weights(stack_dir: Path) -> list[int]:
    primary = next(r for r in stored(stack_dir)["spec"]["http"] if r["name"] == "primary")
    return [d["weight"] for d in primary["route"]]


def test_status_reads_names_weights_and_readiness_from_the_stack(stack_dir: Path) -> None:
    result = run(stack_dir, "status", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["virtualService"] == "model-serving" and doc["resourceVersion"] == "1"
    assert doc["weights"] == {"stable": 90, "canary": 10}
    assert doc["inferenceServices"]["stable"]["ready"] is True
    canary = doc["inferenceServices"]["canary"]
    assert canary["ready"] is False and "unreachable" in canary["message"]
    assert doc["metrics"] is None  # the stack description says no Prometheus


def test_set_weight_writes_weights_revision_annotation_and_event(stack_dir: Path) -> None:
    result = run(stack_dir, "set-weight", "30")
    assert result.exit_code == 0, result.output
    assert "resourceVersion 1 -> 2" in result.stdout
    assert weights(stack_dir) == [70, 30]
    meta = stored(stack_dir)["metadata"]
    assert meta["resourceVersion"] == "2"
    decision = json.loads(meta["annotations"]["rollout.model-serving/last-decision"])
    assert (decision["action"], decision["stable"], decision["canary"]) == ("set-weight", 70, 30)
    event = json.loads((stack_dir / "events.jsonl").read_text().splitlines()[-1])
    assert event["reason"] == "RolloutSetWeight" and "canary 30%" in event["message"]
    assert run(stack_dir, "promote").exit_code == 0 and weights(stack_dir) == [0, 100]
    assert run(stack_dir, "rollback", "--patch-type", "json").exit_code == 0 and weights(stack_dir) == [
        100,
        0,
    ]
    assert stored(stack_dir)["metadata"]["resourceVersion"] == "4"


def test_a_stale_resource_version_is_a_conflict_and_writes_nothing(stack_dir: Path) -> None:
    assert run(stack_dir, "set-weight", "20").exit_code == 0
    before = (stack_dir / "virtualservice.yaml").read_text()
    result = run(stack_dir, "set-weight", "50", "--resource-version", "1")
    assert result.exit_code == 3, result.output
    assert (
        "changed by someone else" in result.stderr and "resourceVersion 1 expected, 2 stored" in result.stderr
    )
    assert (stack_dir / "virtualservice.yaml").read_text() == before


@pytest.mark.parametrize("patch_type", ["merge", "json"])
def test_a_concurrent_change_between_read_and_write_is_a_conflict(stack_dir: Path, patch_type: str) -> None:
    gateway = LocalGateway(LocalStack(stack_dir))
    router = IstioRouter(
        gateway,
        "model-serving",
        Backend("model-serving-stable"),
        Backend("model-serving-canary"),
        patch_type=patch_type,  # type: ignore[arg-type]
    )
    routes = router.get_routes()
    assert run(stack_dir, "set-weight", "40").exit_code == 0  # someone else, meanwhile
    with pytest.raises(ConflictError) as e:
        router.set_routes(routes, Weights(50, 50))
    assert e.value.exit_code == 3
    assert ("JSON-patch test failed" if patch_type == "json" else "changed by someone else") in str(e.value)
    assert weights(stack_dir) == [60, 40]


def test_dry_run_prints_the_guarded_patch_and_changes_nothing(stack_dir: Path) -> None:
    result = run(stack_dir, "set-weight", "25", "--dry-run", "--patch-type", "json")
    assert result.exit_code == 0, result.output
    ops = json.loads(result.stdout)
    assert {"op": "test", "path": "/spec/http/4/route/1/weight", "value": 10} in ops
    assert {"op": "replace", "path": "/spec/http/4/route/1/weight", "value": 25} in ops
    assert stored(stack_dir)["metadata"]["resourceVersion"] == "1" and weights(stack_dir) == [90, 10]


def test_errors_keep_their_exit_codes(stack_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    missing = run(tmp_path_factory.mktemp("nothing"), "status")
    assert missing.exit_code == 9 and "make up" in missing.stderr
    other = run(stack_dir, "set-weight", "5", "--virtual-service", "other")
    assert other.exit_code == 4 and 'virtualservices.networking.istio.io "other" not found' in other.stderr
    assert run(stack_dir, "set-weight", "101").exit_code == 2
    gateway = LocalGateway(LocalStack(stack_dir))
    with pytest.raises(Exception, match="does not exist"):
        gateway.patch(ISTIO, "model-serving", [{"op": "replace", "path": "/spec/nothing/0", "value": 1}])
