"""``STACK_RETRAINING=true make up`` wiring, without starting the stack: the trigger program, the
Alertmanager route to it, its environment (the retraining rollout's gates, the cooldown), and
``local_stack canary-bundle`` / ``stable-bundle`` moving every program of a track, ``drift-bundle``
the drift detector (its feedback database stays where it is)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "manifests" / "local"))
from local_stack.chart import render
from local_stack.errors import StackError
from local_stack.monitoring import alertmanager_config
from local_stack.retraining import canary_bundle, drift_bundle, stable_bundle, trigger_program
from local_stack.settings import StackSettings
from local_stack.topology import build


@pytest.fixture
def settings(gbm_bundle: Path, mlp_bundle: Path, tmp_path: Path) -> StackSettings:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    (bundles / "gbm").symlink_to(gbm_bundle)
    (bundles / "mlp").symlink_to(mlp_bundle)
    (bundles / "gbm-20261130T130000Z").symlink_to(gbm_bundle)
    return StackSettings(state_dir=tmp_path / "state", bundles=bundles, namespace="local", retraining=True)


def test_off_by_default(settings: StackSettings) -> None:
    off = settings.model_copy(update={"retraining": False})
    assert trigger_program(off, build(render(off), off)) is None
    (receiver,) = alertmanager_config(off)["receivers"]
    assert [w["url"] for w in receiver["webhook_configs"]] == ["http://127.0.0.1:9095/alertmanager"]


def test_the_trigger_program_and_its_alert_route(settings: StackSettings) -> None:
    topo = build(render(settings), settings)
    program = trigger_program(settings, topo)
    assert program is not None and program.ready_url == "http://127.0.0.1:8097/healthz"
    args = program.command
    opts = dict(zip(args[3::2], args[4::2], strict=False))
    training = shlex.split(opts["--training-command"])
    assert training[1:4] == ["-m", "training", "retrain"]
    assert training[training.index("--champion") + 1] == str(settings.bundles / "gbm")
    assert training[training.index("--feedback-url") + 1] == "http://127.0.0.1:8090"
    assert training[training.index("--inferenceservice") + 1] == "model-serving-stable"
    assert training[training.index("--storage-prefix") + 1] == "pvc://model-bundles"
    assert shlex.split(opts["--rollout-command"])[1:4] == ["run", "--router", "local"]
    assert opts["--canary-command"].endswith("canary-bundle {storage_uri}")
    assert opts["--stable-command"].endswith("stable-bundle {storage_uri}")
    assert opts["--detector-command"].endswith("drift-bundle {storage_uri}")
    assert training[training.index("--original-share") + 1] == "0.3"
    assert program.env["ROLLOUT_RETRAIN_COOLDOWN_SECONDS"] == "300"
    # `rollout run` inherits the trigger's environment: quality gate on, drift gate off
    assert program.env["ROLLOUT_MAX_ACCURACY_DROP"] == "0.02"
    assert program.env["ROLLOUT_FAIL_ON_DRIFT"] == "false"
    (receiver,) = alertmanager_config(settings)["receivers"]
    assert [w["url"] for w in receiver["webhook_configs"]][-1] == "http://127.0.0.1:8097/alertmanager"


class FakeStack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.restarted: list[str] = []

    def restart(self, name: str) -> None:
        self.restarted.append(name)


def test_canary_bundle_moves_every_canary_program_and_restarts_it(settings: StackSettings) -> None:
    topo = build(render(settings), settings)
    settings.state_dir.mkdir(parents=True)
    programs = {p.name: {"command": p.command, "env": p.env} for p in topo.programs}
    (settings.state_dir / "programs.json").write_text(json.dumps(programs))
    stack = FakeStack(settings)
    before = canary_bundle(stack, "pvc://model-bundles/gbm-20261130T130000Z")  # type: ignore[arg-type]
    assert before == "pvc://model-bundles/mlp"
    after = json.loads((settings.state_dir / "programs.json").read_text())
    canary = sorted(n for n in after if n.startswith("canary-"))
    assert canary == ["canary-explainer", "canary-predictor", "canary-transformer"] == sorted(stack.restarted)
    for name in canary:
        command = after[name]["command"]
        assert command[command.index("--model_dir") + 1] == str(settings.bundles / "gbm-20261130T130000Z")
    stable = after["stable-predictor"]["command"]
    assert stable[stable.index("--model_dir") + 1] == str(settings.bundles / "gbm")
    with pytest.raises(StackError, match=r"maps to .*missing, which has no model\.onnx"):
        canary_bundle(stack, "pvc://model-bundles/missing")  # type: ignore[arg-type]
    with pytest.raises(StackError, match="is not under pvc://model-bundles/"):
        canary_bundle(stack, "s3://elsewhere/x")  # type: ignore[arg-type]


def test_the_trigger_environment_takes_stack_extra_env(settings: StackSettings) -> None:
    tuned = settings.model_copy(
        update={
            "extra_env": {"retrain-trigger": {"ROLLOUT_INTERVAL": "5s", "ROLLOUT_MAX_ACCURACY_DROP": "0"}}
        }
    )
    program = trigger_program(tuned, build(render(tuned), tuned))
    assert program is not None
    assert (program.env["ROLLOUT_INTERVAL"], program.env["ROLLOUT_MAX_ACCURACY_DROP"]) == ("5s", "0")
    assert program.env["ROLLOUT_FAIL_ON_DRIFT"] == "false"


def test_stable_bundle_moves_every_stable_program_and_leaves_the_canary(settings: StackSettings) -> None:
    topo = build(render(settings), settings)
    settings.state_dir.mkdir(parents=True)
    programs = {p.name: {"command": p.command, "env": p.env} for p in topo.programs}
    (settings.state_dir / "programs.json").write_text(json.dumps(programs))
    stack = FakeStack(settings)
    before = stable_bundle(stack, "pvc://model-bundles/gbm-20261130T130000Z")  # type: ignore[arg-type]
    assert before == "pvc://model-bundles/gbm"
    after = json.loads((settings.state_dir / "programs.json").read_text())
    stable = sorted(n for n in after if n.startswith("stable-"))
    assert stable == ["stable-explainer", "stable-predictor", "stable-transformer"] == sorted(stack.restarted)
    for name in stable:
        command = after[name]["command"]
        assert command[command.index("--model_dir") + 1] == str(settings.bundles / "gbm-20261130T130000Z")
    canary = after["canary-predictor"]["command"]
    assert canary[canary.index("--model_dir") + 1] == str(settings.bundles / "mlp")
    drift = after["drift-detector"]["command"]
    assert str(settings.bundles / "gbm-20261130T130000Z") not in drift, "the detector keeps its reference"


def test_drift_bundle_restarts_only_the_detector_and_keeps_its_feedback_database(
    settings: StackSettings,
) -> None:
    topo = build(render(settings), settings)
    settings.state_dir.mkdir(parents=True)
    programs = {p.name: {"command": p.command, "env": p.env} for p in topo.programs}
    (settings.state_dir / "programs.json").write_text(json.dumps(programs))
    stack = FakeStack(settings)
    before = drift_bundle(stack, "pvc://model-bundles/gbm-20261130T130000Z")  # type: ignore[arg-type]
    assert before == "pvc://model-bundles/gbm"
    assert stack.restarted == ["drift-detector"]
    after = json.loads((settings.state_dir / "programs.json").read_text())
    drift = after["drift-detector"]
    assert drift["command"][drift["command"].index("--model_dir") + 1] == str(
        settings.bundles / "gbm-20261130T130000Z"
    )
    db = drift["env"]["DRIFT_FEEDBACK_DB_URL"]
    assert db == programs["drift-detector"]["env"]["DRIFT_FEEDBACK_DB_URL"], "the feedback store is kept"
    assert db.startswith(f"sqlite:///{settings.state_dir / 'volumes'}"), db
    for name in ("stable-predictor", "canary-predictor"):
        assert after[name] == programs[name]
    # a feedback database inside a bundle folder would be left behind: refused, nothing restarted
    after["drift-detector"]["env"]["DRIFT_FEEDBACK_DB_URL"] = f"sqlite:///{settings.bundles / 'mlp' / 'f.db'}"
    (settings.state_dir / "programs.json").write_text(json.dumps(after))
    with pytest.raises(StackError, match=r"the feedback database .*f\.db is inside the bundle folder"):
        drift_bundle(stack, "pvc://model-bundles/mlp")  # type: ignore[arg-type]
    assert stack.restarted == ["drift-detector"]
