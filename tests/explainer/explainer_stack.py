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
from model_stack import MODEL, Server, component, started_together

__all__ = ["BIG_BATCH", "FAKE_TIMEOUT", "MODEL", "Explainer", "Stack", "running_stack"]

BIG_BATCH = 16384
"""PREDICTOR_MAX_ROWS and EXPLAINER_PREDICTOR_MAX_ROWS of the gRPC pair: one request per record."""
FAKE_TIMEOUT = 1.0
"""EXPLAINER_PREDICTOR_TIMEOUT of the explainer in front of the fake predictor."""
SAMPLED = 300
"""EXPLAINER_NSAMPLES of the REST explainer: fewer coalitions than the 1022 there are, so sampled."""


class Explainer(Server):
    """An explainer (or the predictor behind it); ``v1`` and ``v2`` are its explain URLs."""

    V1_VERB = ":explain"
    V2_VERB = "/explain"


def _server(module: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Server:
    return component(module, args, log, env, kind=Explainer, ready_timeout=120.0)


@dataclass
class Stack:
    predictor: Server
    grpc: Server
    rest: Server
    fake: Server
    """explainer -> the fake predictor (gRPC)"""
    fake_rest: Server
    """explainer -> the fake predictor (REST V2)"""
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
        fake_rest=explainer(
            "fake-rest", fake.http_host, "v2", {"EXPLAINER_PREDICTOR_TIMEOUT": str(FAKE_TIMEOUT)}
        ),
        fake_predictor=fake,
    )
    servers = [stack.predictor, stack.grpc, stack.rest, stack.fake, stack.fake_rest]
    try:
        with started_together(servers):
            yield stack
    finally:
        fake.stop()
