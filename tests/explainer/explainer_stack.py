"""The explainer test stack: a real predictor and explainers in front of it (gRPC in one large batch;
REST V2 in predictor-sized chunks with sampled coalitions), and one in front of a fake predictor
(header capture, rejections, slowness); real ``python -m`` processes on free loopback ports,
started together and stopped by PID. (Not in conftest.py: test modules import these names, and
every test folder has a module called ``conftest``.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fake_predictor import FakePredictor
from support import ServerProcess, free_port

MODEL = "diabetes-risk"
BIG_BATCH = 16384
"""PREDICTOR_MAX_ROWS and EXPLAINER_PREDICTOR_MAX_ROWS of the gRPC pair: one request per record."""
FAKE_TIMEOUT = 1.0
"""EXPLAINER_PREDICTOR_TIMEOUT of the explainer in front of the fake predictor."""
SAMPLED = 300
"""EXPLAINER_NSAMPLES of the REST explainer: fewer coalitions than the 1022 there are, so sampled."""


@dataclass
class Server:
    http_port: int
    grpc_port: int
    process: ServerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1/models/{MODEL}:explain"

    @property
    def v2(self) -> str:
        return f"{self.url}/v2/models/{MODEL}/explain"


def _server(module: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Server:
    http, grpc = free_port(), free_port()
    process = ServerProcess(
        ["-m", module, "--model_name", MODEL, "--http_port", str(http), "--grpc_port", str(grpc), *args],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        env=env,
        log_path=log,
        ready_timeout=120.0,
    )
    return Server(http, grpc, process)


@dataclass
class Stack:
    predictor: Server
    grpc: Server
    rest: Server
    fake: Server
    """explainer -> the fake predictor (gRPC)"""
    fake_predictor: FakePredictor


@contextlib.contextmanager
def running_stack(gbm_bundle: Path, logs: Path) -> Iterator[Stack]:
    fake = FakePredictor().start()
    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = _server(
        "predictor", bundle, logs / "predictor.log", env={"PREDICTOR_MAX_ROWS": str(BIG_BATCH)}
    )

    def explainer(name: str, host: str, protocol: str, env: dict[str, str]) -> Server:
        args = [*bundle, "--predictor_host", host, "--predictor_protocol", protocol]
        return _server("explainer", args, logs / f"explainer-{name}.log", env=env)

    stack = Stack(
        predictor=predictor,
        grpc=explainer(
            "grpc",
            f"127.0.0.1:{predictor.grpc_port}",
            "grpc-v2",
            {"EXPLAINER_PREDICTOR_MAX_ROWS": str(BIG_BATCH)},
        ),
        rest=explainer(
            "rest", f"127.0.0.1:{predictor.http_port}", "v2", {"EXPLAINER_NSAMPLES": str(SAMPLED)}
        ),
        fake=explainer("fake", fake.grpc_host, "grpc-v2", {"EXPLAINER_PREDICTOR_TIMEOUT": str(FAKE_TIMEOUT)}),
        fake_predictor=fake,
    )
    servers = [stack.predictor, stack.grpc, stack.rest, stack.fake]
    try:
        for s in servers:
            s.process.start(wait=False)
        for s in servers:
            s.process.wait_ready()
        yield stack
    finally:
        for s in reversed(servers):
            s.process.stop()
        fake.stop()
