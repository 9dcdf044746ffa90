"""Test support: free loopback ports, and real component processes started and stopped by PID.

Every server a test starts goes through :class:`ServerProcess`, which waits for a readiness URL
(bounded), and on exit terminates the process it started (SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
VENV_DRIFT_PYTHON = REPO / ".venv-drift" / "bin" / "python"


_HANDED_OUT: set[int] = set()
_PORTS = random.Random(os.getpid())


def _bindable(port: int) -> bool:
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A TCP port free right now on every address, below the kernel's ephemeral range.

    Ports from the ephemeral range (what binding to port 0 returns) are also what every
    outgoing connection on the machine is given, so one can be taken between this call and
    the server's bind; gRPC, binding ``[::]``, then fails to start. Ports below the range are
    only taken by listeners. A port is never handed out twice in one test process.
    """
    for _ in range(1000):
        port = _PORTS.randrange(20000, 32000)
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free TCP port found in 20000-32000")


class ServerProcess:
    """A real component process (``python -m pkg ...``) on loopback ports."""

    def __init__(
        self,
        args: Sequence[str],
        ready_url: str | None,
        *,
        python: str | os.PathLike[str] = sys.executable,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        ready_timeout: float = 90.0,
    ) -> None:
        self.args = [str(python), *args]
        self.ready_url = ready_url
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: object | None = None

    def start(self, wait: bool = True) -> ServerProcess:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._log = log
        self.proc = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if wait and self.ready_url:
            self.wait_ready()
        return self

    def output(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-6000:]
        return ""

    def wait_ready(self) -> None:
        assert self.proc is not None and self.ready_url is not None
        deadline = time.monotonic() + self.ready_timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.args} exited with {self.proc.returncode} before ready:\n{self.output()}"
                )
            try:
                r = httpx.get(self.ready_url, timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.args} not ready after {self.ready_timeout}s ({last}):\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if hasattr(self._log, "close"):
            self._log.close()  # type: ignore[union-attr]
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(*servers: ServerProcess) -> Iterator[tuple[ServerProcess, ...]]:
    started: list[ServerProcess] = []
    try:
        for s in servers:
            started.append(s.start())
        yield servers
    finally:
        for s in reversed(started):
            s.stop()


MODEL = "diabetes-risk"


@dataclass
class PredictorProcess:
    """A ``python -m predictor`` process (not started until ``process.start()``)."""

    http: str
    """Base URL, ``http://127.0.0.1:PORT``."""
    grpc: str
    """``127.0.0.1:PORT``."""
    process: ServerProcess
    model: str = MODEL

    @property
    def infer_url(self) -> str:
        return f"{self.http}/v2/models/{self.model}/infer"


def predictor_process(
    bundle: Path,
    log: Path | None,
    *,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    model: str = MODEL,
) -> PredictorProcess:
    """The predictor serving ``bundle`` on free loopback ports, ready when its model is ready."""
    http, grpc = free_port(), free_port()
    args = [
        "-m",
        "predictor",
        "--model_name",
        model,
        "--model_dir",
        str(bundle),
        "--http_port",
        str(http),
        "--grpc_port",
        str(grpc),
        *extra,
    ]
    proc = ServerProcess(
        args, ready_url=f"http://127.0.0.1:{http}/v2/models/{model}/ready", env=env, log_path=log
    )
    return PredictorProcess(f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc}", proc, model)
