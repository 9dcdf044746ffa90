"""Retraining in the local stack (opt-in: ``STACK_RETRAINING=true make up``; issue 14).

* the ``retrain-trigger`` program: ``python -m rollout.retrain --router local``, Alertmanager's
  webhook also goes to it (``monitoring.alertmanager_config``); a run is ``python -m training
  retrain`` with the stable bundle as champion, the drift detector's ``GET /labelled`` as data and
  ``<bundles>`` as the version root (``pvc://model-bundles/<version>`` = ``<bundles>/<version>``);
* the canary is moved with ``python -m local_stack canary-bundle STORAGE_URI``
  (:func:`canary_bundle`): every ``canary-*`` program's ``--model_dir`` is set to the bundle the
  storage URI maps to and the program restarted; then ``rollout run --router local`` decides, with
  the quality gate on and the drift gate off (:data:`ROLLOUT_ENV`: the traffic that started the run
  drifts from the reference by definition, so drift says nothing about the challenger);
* after a promotion (canary at 100 %) ``python -m local_stack stable-bundle STORAGE_URI`` moves the
  ``stable-*`` programs the same way and the trigger puts the weights back to 100/0; then
  ``python -m local_stack drift-bundle STORAGE_URI`` (:func:`drift_bundle`) restarts the drift
  detector on the promoted bundle (its reference sample and scores; windows start empty, the
  feedback store's database file stays where it is);
* alerts within ``ROLLOUT_RETRAIN_COOLDOWN_SECONDS`` (:data:`COOLDOWN_SECONDS` locally) after a
  run ended start nothing.

``STACK_EXTRA_ENV='{"retrain-trigger": {"ROLLOUT_INTERVAL": "5s", ...}}'`` changes the trigger's
environment, which its ``rollout run`` inherits (every ``rollout run`` option has a ``ROLLOUT_*``
variable).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import StackError
from .settings import REPO, StackSettings
from .topology import Program, Topology

if TYPE_CHECKING:
    from .stack import Stack

__all__ = [
    "COOLDOWN_SECONDS",
    "ROLLOUT_ENV",
    "TRAINING_ARGS",
    "canary_bundle",
    "drift_bundle",
    "stable_bundle",
    "track_bundle",
    "trigger_program",
]

PREFIX = "pvc://model-bundles"
ROLLOUT_ENV = {"ROLLOUT_MAX_ACCURACY_DROP": "0.02", "ROLLOUT_FAIL_ON_DRIFT": "false"}
"""``rollout run`` of a retraining run: the quality gate decides (live accuracy of the canary at
most 0.02 below the stable's on labelled traffic), not drift against the old reference."""
TRAINING_ARGS = ("--original-share", "0.3")
"""As the chart's ``ci/retraining-values.yaml``: at most 30 % original rows in a challenger's
training set (it learns mostly from today's population). The drift reference of a retrained bundle
is drawn from its production rows only (``training.retrain``), so the promoted detector holds the
traffic that caused the run as normal whatever this share."""
COOLDOWN_SECONDS = "300"
"""The trigger's cooling-off after a run locally (the chart's default is 1800 s); ``STACK_EXTRA_ENV``
``retrain-trigger`` ``ROLLOUT_RETRAIN_COOLDOWN_SECONDS`` changes it."""


def _model_dir(program: Program | dict[str, object]) -> str:
    command = program.command if isinstance(program, Program) else list(program["command"])  # type: ignore[call-overload]
    return str(command[command.index("--model_dir") + 1])


def trigger_program(settings: StackSettings, topo: Topology) -> Program | None:
    if not settings.retraining:
        return None
    stable = next((p for p in topo.programs if p.name == "stable-predictor"), None)
    if stable is None:
        raise StackError("retraining needs the stable predictor (its bundle is the champion)")
    stable_isvc = next((n for n, v in topo.inference_services.items() if v["track"] == "stable"), "")
    state = settings.state_dir
    training = [
        settings.python, "-m", "training", "retrain", "--champion", _model_dir(stable),
        "--feedback-url", f"http://127.0.0.1:{settings.port('drift-detector')}",
        "--inferenceservice", stable_isvc, "--bundles", str(settings.bundles), "--storage-prefix", PREFIX,
        *TRAINING_ARGS,
    ]  # fmt: skip
    rollout_cli = str(Path(settings.python).with_name("rollout"))
    rollout = [rollout_cli, "run", "--router", "local", "--local-stack", str(state)]
    local_stack = f"{settings.python} -m local_stack --state-dir {shlex.quote(str(state))}"
    port = settings.port("retrain-trigger")
    command = [
        settings.python, "-m", "rollout.retrain", "--router", "local", "--host", "127.0.0.1",
        "--port", str(port), "--state", str(state), "--poll-seconds", "1",
        "--training-command", shlex.join(training), "--rollout-command", shlex.join(rollout),
        "--canary-command", f"{local_stack} canary-bundle {{storage_uri}}",
        "--stable-command", f"{local_stack} stable-bundle {{storage_uri}}",
        "--detector-command", f"{local_stack} drift-bundle {{storage_uri}}",
    ]  # fmt: skip
    return Program(
        name="retrain-trigger",
        command=command,
        # the canary and stable commands run `python -m local_stack`
        env={
            "PYTHONPATH": str(REPO / "manifests" / "local"),
            **ROLLOUT_ENV,
            "ROLLOUT_RETRAIN_COOLDOWN_SECONDS": COOLDOWN_SECONDS,
            **settings.extra_env.get("retrain-trigger", {}),
        },
        ready_url=f"http://127.0.0.1:{port}/healthz",
        priority=100,
    )


def canary_bundle(stack: Stack, storage_uri: str) -> str:
    """Point every canary program at the bundle of ``storage_uri``; prints/returns the old URI."""
    return track_bundle(stack, "canary", storage_uri)


def stable_bundle(stack: Stack, storage_uri: str) -> str:
    """Point every stable program at the bundle of ``storage_uri``; prints/returns the old URI."""
    return track_bundle(stack, "stable", storage_uri)


def drift_bundle(stack: Stack, storage_uri: str) -> str:
    """Restart the drift detector on the bundle of ``storage_uri`` (its reference sample, scores
    and version); returns the storage URI it judged against before. Its feedback store must not
    live in a bundle folder (it would be left behind): a clear error if it does."""
    bundle = _bundle(stack, storage_uri)
    programs = json.loads((stack.settings.state_dir / "programs.json").read_text())
    detector = programs.get("drift-detector")
    if detector is None:
        raise StackError("the local stack has no drift-detector program")
    db = str(detector["env"].get("DRIFT_FEEDBACK_DB_URL", ""))
    if db.startswith("sqlite:///"):
        path = Path(db.removeprefix("sqlite:///")).resolve()
        for folder in (bundle, Path(_model_dir(detector))):
            if path.is_relative_to(folder.resolve()):
                raise StackError(f"the feedback database {path} is inside the bundle folder {folder}")
    return track_bundle(stack, "drift", storage_uri)


def _bundle(stack: Stack, storage_uri: str) -> Path:
    if not storage_uri.startswith(PREFIX + "/"):
        raise StackError(f"storage URI {storage_uri!r} is not under {PREFIX}/ (the local bundles)")
    bundle = stack.settings.bundles / storage_uri.removeprefix(PREFIX + "/")
    if not (bundle / "model.onnx").is_file():
        raise StackError(f"storage URI {storage_uri} maps to {bundle}, which has no model.onnx")
    return bundle


def track_bundle(stack: Stack, track: str, storage_uri: str) -> str:
    """Point every ``<track>-*`` program with a ``--model_dir`` at the bundle of ``storage_uri``
    and restart it (each waits until ready); returns the storage URI it served before."""
    bundle = _bundle(stack, storage_uri)
    programs_file = stack.settings.state_dir / "programs.json"
    programs = json.loads(programs_file.read_text())
    names = [n for n in programs if n.startswith(f"{track}-") and "--model_dir" in programs[n]["command"]]
    if not names:
        raise StackError(f"the local stack has no {track} programs")
    before = _model_dir(programs[names[0]])
    for name in names:
        command = programs[name]["command"]
        command[command.index("--model_dir") + 1] = str(bundle)
    programs_file.write_text(json.dumps(programs, indent=2))
    for name in names:
        stack.restart(name)
    return f"{PREFIX}/{before.rstrip('/').rsplit('/', 1)[-1]}"
