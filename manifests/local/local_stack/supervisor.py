"""supervisord for the stack: a generated config, the daemon's XML-RPC over a unix socket, clean stop.

Every program runs as ``python -m local_stack exec NAME`` which replaces itself (``execve``, same
PID) with the command and environment recorded in ``programs.json``, so the supervisor config
never has to quote environment values, and changing a program's environment is a rewrite of
that file and a restart. Logs: ``<state>/logs/<program>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from .errors import ProcessError
from .settings import REPO, StackSettings
from .topology import Program

__all__ = ["Supervisor"]


def _esc(value: str | Path) -> str:
    return str(value).replace("%", "%%")


class Supervisor:
    """The supervisord of one state folder."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.dir = settings.state_dir
        self.conf = self.dir / "supervisord.conf"
        self.socket = self.dir / "supervisor.sock"
        self.pidfile = self.dir / "supervisord.pid"
        self.logs = self.dir / "logs"
        self.programs_file = self.dir / "programs.json"

    # configuration -------------------------------------------------------------------------------
    def write(self, programs: list[Program]) -> None:
        if len(str(self.socket)) > 100:
            raise ProcessError(f"state folder path too long for a unix socket: {self.socket}")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.programs_file.write_text(
            json.dumps({p.name: {"command": p.command, "env": p.env} for p in programs}, indent=2)
        )
        python = self.settings.python
        lines = [
            "[unix_http_server]",
            f"file={_esc(self.socket)}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={_esc(self.logs / 'supervisord.log')}",
            f"pidfile={_esc(self.pidfile)}",
            f"childlogdir={_esc(self.logs)}",
            f"directory={_esc(REPO)}",
            "identifier=local-stack",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{_esc(self.socket)}",
        ]
        for p in programs:
            lines += [
                "",
                f"[program:{p.name}]",
                f"command={_esc(python)} -m local_stack --state-dir {_esc(self.dir)} exec {p.name}",
                f'environment=PYTHONPATH="{_esc(REPO / "manifests" / "local")}"',
                f"directory={_esc(REPO)}",
                f"stdout_logfile={_esc(self.logs / (p.name + '.log'))}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=1",
                "redirect_stderr=true",
                "autostart=true",
                "autorestart=true",
                "startsecs=1",
                "startretries=3",
                "stopsignal=TERM",
                "stopwaitsecs=15",
                "stopasgroup=true",
                "killasgroup=true",
                f"priority={p.priority}",
            ]
        self.conf.write_text("\n".join(lines) + "\n")

    def set_env(self, name: str, changes: dict[str, str | None]) -> dict[str, str]:
        programs = json.loads(self.programs_file.read_text())
        if name not in programs:
            raise ProcessError(f"no program {name!r} (programs: {', '.join(programs)})")
        env: dict[str, str] = programs[name]["env"]
        for k, v in changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.programs_file.write_text(json.dumps(programs, indent=2))
        return env

    # the daemon ----------------------------------------------------------------------------------
    def call(self, method: str, *args: Any) -> Any:
        """One XML-RPC call to supervisord (``supervisor.<method>``), its connection closed after."""
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        try:
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            return getattr(proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault as e:
            raise ProcessError(f"supervisord refused {method}{args}: {e.faultString}") from e
        finally:
            transport.close()

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        if self.pid() is None:
            return False
        try:
            return str(self.call("getState")["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Error, ProcessError):
            return False

    def start(self, supervisord: str) -> None:
        done = subprocess.run(
            [supervisord, "-c", str(self.conf)], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise ProcessError(f"supervisord did not start: {done.stderr.strip() or done.stdout.strip()}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.running():
            time.sleep(0.1)
        if not self.running():
            raise ProcessError(
                f"supervisord not answering on {self.socket} (see {self.logs / 'supervisord.log'})"
            )

    def processes(self) -> list[dict[str, Any]]:
        info: list[dict[str, Any]] = self.call("getAllProcessInfo")
        return info

    def stop_all(self, timeout: float = 60.0) -> list[int]:
        """Shut supervisord down (it stops every program); returns the PIDs that were stopped.

        Anything still alive after ``timeout`` (a child that ignored SIGTERM and SIGKILL went
        astray) is killed by its recorded PID.
        """
        pid = self.pid()
        pids: list[int] = []
        if pid is not None:
            with contextlib.suppress(OSError, xmlrpc.client.Error, ProcessError):
                pids = [int(p["pid"]) for p in self.processes() if int(p["pid"]) > 0]
            try:
                self.call("shutdown")
            except (OSError, xmlrpc.client.Error, ProcessError):
                os.kill(pid, signal.SIGTERM)
            pids.append(pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        for p in pids:
            if _alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        for f in (self.socket, self.pidfile):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True
