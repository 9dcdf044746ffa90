"""The local stack as a test resource: started once per module on free loopback ports, stopped by PID.

``python -m local_stack up`` runs exactly as ``make up`` does, in a temporary state folder with
every port taken from :func:`support.free_port`, a 1 s scrape interval (``--set
monitoring.interval=1s``) and a drift window of 100 rows. :class:`LocalStack` wraps the stack's
description (``stack.json``) with the few operations the tests need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from support import REPO, free_port

sys.path.insert(0, str(REPO / "manifests" / "local"))
from local_stack.settings import (
    DEFAULT_PORTS,
    StackSettings,
)
from local_stack.supervisor import Supervisor

PYTHON = str(REPO / ".venv" / "bin" / "python")
ROLLOUT = str(REPO / ".venv" / "bin" / "rollout")


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class LocalStack:
    def __init__(self, state_dir: Path, bundles: Path) -> None:
        self.state_dir, self.bundles = state_dir, bundles
        self.ports = {name: free_port() for name in DEFAULT_PORTS}
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "manifests" / "local"),
            "STACK_STATE_DIR": str(state_dir),
            "STACK_BUNDLES": str(bundles),
            "STACK_PORTS": json.dumps(self.ports),
            "STACK_HELM_SET": json.dumps(["monitoring.interval=1s"]),
            "STACK_EXTRA_ENV": json.dumps({"drift-detector": {"DRIFT_WINDOW_SIZE": "100"}}),
            "STACK_READY_TIMEOUT": "240",
        }
        self.info: dict[str, Any] = {}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "local_stack", *args], cwd=REPO, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def up(self) -> None:
        done = self.cli("up")
        assert done.returncode == 0, f"make up failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        self.info = json.loads((self.state_dir / "stack.json").read_text())

    def down(self) -> str:
        done = self.cli("down", timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def supervisor(self) -> Supervisor:
        return Supervisor(StackSettings(state_dir=self.state_dir))

    def url(self, key: str) -> str:
        return str(self.info[key])

    # routes --------------------------------------------------------------------------------------
    def virtual_service(self) -> dict[str, Any]:
        vs: dict[str, Any] = yaml.safe_load(Path(self.info["virtualService"]["file"]).read_text())
        return vs

    def weights(self) -> tuple[int, int]:
        primary = next(r for r in self.virtual_service()["spec"]["http"] if r["name"] == "primary")
        w = [int(d.get("weight", 0)) for d in primary["route"]]
        return w[0], w[1]

    def envoy_version(self) -> str:
        dump = httpx.get(
            f"{self.url('envoyAdmin')}/config_dump?resource=dynamic_route_configs", timeout=5
        ).json()
        return str(dump["configs"][0].get("version_info", ""))

    def wait_routes_applied(self) -> str:
        """Until Envoy serves the VirtualService file's current resourceVersion."""
        rv = str(self.virtual_service()["metadata"]["resourceVersion"])
        wait_for(f"Envoy routes at resourceVersion {rv}", lambda: self.envoy_version() == rv, 15, 0.1)
        return rv

    # processes and metrics -----------------------------------------------------------------------
    def counter(self, program: str, metric: str, **labels: str) -> float:
        """Sum of ``metric`` samples (matching ``labels``) on a program's own /metrics."""
        port = self.ports[program]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(metric + "{") and not line.startswith(metric + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def rollout(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "ROLLOUT_ROUTER": "local", "ROLLOUT_LOCAL_STACK": str(self.state_dir)}
        return subprocess.run(
            [ROLLOUT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def rollout_popen(self, *args: str) -> subprocess.Popen[str]:
        env = {**self.env, "ROLLOUT_ROUTER": "local", "ROLLOUT_LOCAL_STACK": str(self.state_dir)}
        return subprocess.Popen(
            [ROLLOUT, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
