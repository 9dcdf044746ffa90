"""What the transformer and explainer test stacks share: ``python -m`` components serving
:data:`MODEL` on free loopback ports, started together, waited for, and stopped by PID."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from support import ServerProcess, free_port

MODEL = "diabetes-risk"


@dataclass
class Server:
    """One component process; ``v1`` and ``v2`` are its inference URLs (``:predict``, ``/infer``)."""

    http_port: int
    grpc_port: int
    process: ServerProcess

    V1_VERB: ClassVar[str] = ":predict"
    V2_VERB: ClassVar[str] = "/infer"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1/models/{MODEL}{self.V1_VERB}"

    @property
    def v2(self) -> str:
        return f"{self.url}/v2/models/{MODEL}{self.V2_VERB}"


def component(
    module: str,
    args: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    kind: type[Server] = Server,
    ready_timeout: float = 90.0,
) -> Server:
    """``python -m module`` serving MODEL on free ports (not started), ready when the model is."""
    http, grpc = free_port(), free_port()
    process = ServerProcess(
        ["-m", module, "--model_name", MODEL, "--http_port", str(http), "--grpc_port", str(grpc), *args],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        env=env,
        log_path=log,
        ready_timeout=ready_timeout,
    )
    return kind(http, grpc, process)


@contextlib.contextmanager
def started_together(servers: Sequence[Server]) -> Iterator[None]:
    """Starts every server, then waits for each; stops them all (in reverse) on the way out."""
    try:
        for s in servers:
            s.process.start(wait=False)
        for s in servers:
            s.process.wait_ready()
        yield
    finally:
        for s in reversed(servers):
            s.process.stop()
