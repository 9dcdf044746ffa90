"""``python -m rollout.retrain``: the retraining trigger (options also read ``ROLLOUT_RETRAIN_*``)."""

from __future__ import annotations

import contextlib
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ..errors import RolloutError
from ..kube import connect
from .alerts import DEFAULT_ALERTS
from .runners import KubeRunner, LocalRunner
from .server import TriggerServer
from .trigger import Runner, Trigger


@click.command(context_settings={"auto_envvar_prefix": "ROLLOUT_RETRAIN", "show_default": True})
@click.option("--router", type=click.Choice(["kubernetes", "local"]), default="kubernetes")
@click.option("--host", default="0.0.0.0")
@click.option("--port", type=click.IntRange(1, 65535), default=8095)
@click.option("--alerts", default=",".join(sorted(DEFAULT_ALERTS)), help="alert names that start a run")
@click.option("--poll-seconds", type=click.FloatRange(0.05, 600), default=10.0)
@click.option("--deadline-seconds", type=click.FloatRange(1, 86400 * 2), default=7200.0)
@click.option(
    "--cooldown-seconds",
    type=click.FloatRange(0, 86400 * 7),
    default=1800.0,
    help="alerts within this many seconds after a run ended start nothing (answered 200 'cooldown')",
)
@click.option("--kubeconfig", default=None)
@click.option("--context", default=None)
@click.option("--namespace", default=None)
@click.option(
    "--retrain-cronjob", default="model-serving-retrain", help="suspended CronJob of the retraining Job"
)
@click.option("--rollout-cronjob", default="model-serving-rollout", help="suspended CronJob of `rollout run`")
@click.option(
    "--rollout-args",
    default="",
    help="options appended to that Job's `rollout run` (the gates of a retraining rollout), e.g. "
    "'--ignore-drift --max-accuracy-drop=0.02'",
)
@click.option("--canary", default="diabetes-risk-canary", help="the canary InferenceService")
@click.option(
    "--stable",
    default="",
    help="the stable InferenceService: takes a promoted bundle ('' leaves the stable side alone)",
)
@click.option(
    "--virtual-service", default="", help="the VirtualService whose weights go back to 100/0 after that"
)
@click.option(
    "--drift-detector",
    default="",
    help="the drift detector's Deployment: moved onto a promoted bundle ('' leaves it alone)",
)
@click.option(
    "--ready-timeout",
    type=click.FloatRange(1, 86400),
    default=900.0,
    help="seconds the stable side may take to be Ready on the new bundle",
)
@click.option("--selector", default="app.kubernetes.io/component=retrain", help="labels of retraining Jobs")
@click.option(
    "--training-command", default="", help="local: `python -m training retrain ...` (without --result)"
)
@click.option("--rollout-command", default="", help="local: `rollout run --router local ...`")
@click.option("--canary-command", default="", help="local: moves the canary, `{storage_uri}` substituted")
@click.option(
    "--stable-command",
    default="",
    help="local: moves the stable side after a promotion, `{storage_uri}` substituted ('': left alone)",
)
@click.option(
    "--detector-command",
    default="",
    help="local: moves the drift detector onto a promoted bundle, `{storage_uri}` substituted "
    "('': left alone)",
)
@click.option("--state", type=click.Path(path_type=Path), default=Path(".stack"), help="local: state folder")
def main(**o: Any) -> None:
    """Start a retraining run on a drift or quality alert; put an accepted challenger into the canary."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    alerts = frozenset(a.strip() for a in str(o["alerts"]).split(",") if a.strip())
    with contextlib.ExitStack() as stack:
        runner: Runner
        if o["router"] == "kubernetes":
            try:
                gateway = stack.enter_context(connect(o["kubeconfig"], o["context"], o["namespace"]))
            except RolloutError as e:
                raise click.ClickException(str(e)) from e
            runner = KubeRunner(
                gateway,
                retrain_cronjob=o["retrain_cronjob"],
                rollout_cronjob=o["rollout_cronjob"],
                canary=o["canary"],
                selector=o["selector"],
                stable=o["stable"],
                virtual_service=o["virtual_service"],
                ready_timeout=o["ready_timeout"],
                rollout_args=shlex.split(o["rollout_args"]),
                drift_detector=o["drift_detector"],
            )
        else:
            missing = [n for n in ("training_command", "rollout_command", "canary_command") if not o[n]]
            if missing:
                raise click.UsageError(
                    f"--router local needs {', '.join('--' + m.replace('_', '-') for m in missing)}"
                )
            local = LocalRunner(
                shlex.split(o["training_command"]),
                shlex.split(o["rollout_command"]),
                o["canary_command"],
                o["state"],
                stable_command=o["stable_command"],
                detector_command=o["detector_command"],
            )
            stack.callback(local.stop)
            runner = local
        trigger = Trigger(
            runner,
            poll_seconds=o["poll_seconds"],
            deadline_seconds=o["deadline_seconds"],
            cooldown_seconds=o["cooldown_seconds"],
        )
        server = TriggerServer(trigger, alerts, o["host"], o["port"]).start()
        stack.callback(server.stop)
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        logging.getLogger("rollout.retrain").info(
            "listening on %s:%d (%s)", o["host"], server.port, o["router"]
        )
        stopped.wait()


if __name__ == "__main__":
    sys.exit(main())
