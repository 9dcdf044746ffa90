"""The transformer test stack: a real predictor, transformers in front of it (gRPC, REST V2,
REST V1), and transformers in front of a fake predictor (header capture, rejections, slowness)
or of nothing at all (predictor down). All real ``python -m`` processes on free loopback ports,
started together and stopped by PID. (Not in conftest.py: test modules import these names, and
every test folder has a module called ``conftest``.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from event_sink import EventSink
from fake_predictor import FakePredictor
from model_stack import MODEL, Server, component, started_together
from support import free_port

__all__ = ["FAKE_TIMEOUT", "MODEL", "PREDICTOR_MAX_ROWS", "Server", "Stack", "component", "running_stack"]

PREDICTOR_MAX_ROWS = 200
"""The real predictor refuses more rows than this: how the tests get a genuine predictor 400."""
FAKE_TIMEOUT = 1.0
"""TRANSFORMER_PREDICTOR_TIMEOUT of the transformers in front of the fake and the missing predictor."""


@dataclass
class Stack:
    predictor: Server
    grpc: Server
    """transformer -> real predictor over gRPC (with the payload logger on)"""
    rest: Server
    """transformer -> real predictor over REST V2"""
    v1: Server
    """transformer -> real predictor over REST V1"""
    fake_grpc: Server
    fake_rest: Server
    down: Server
    """transformer -> a port nobody listens on"""
    fake: FakePredictor
    sink: EventSink


@contextlib.contextmanager
def running_stack(gbm_bundle: Path, logs: Path) -> Iterator[Stack]:
    fake = FakePredictor().start()
    sink = EventSink().start()
    bundle = ["--model_dir", str(gbm_bundle)]
    predictor = component(
        "predictor", bundle, logs / "predictor.log", env={"PREDICTOR_MAX_ROWS": str(PREDICTOR_MAX_ROWS)}
    )

    def transformer(name: str, host: str, protocol: str, timeout: float = 10.0, *extra: str) -> Server:
        return component(
            "transformer",
            [*bundle, "--predictor_host", host, "--predictor_protocol", protocol, *extra],
            logs / f"transformer-{name}.log",
            env={"TRANSFORMER_PREDICTOR_TIMEOUT": str(timeout)},
        )

    p_grpc, p_http = f"127.0.0.1:{predictor.grpc_port}", f"127.0.0.1:{predictor.http_port}"
    stack = Stack(
        predictor=predictor,
        grpc=transformer("grpc", p_grpc, "grpc-v2", 10.0, "--logger_url", sink.url),
        rest=transformer("rest", p_http, "v2"),
        v1=transformer("v1", p_http, "v1"),
        fake_grpc=transformer("fake-grpc", fake.grpc_host, "grpc-v2", FAKE_TIMEOUT),
        fake_rest=transformer("fake-rest", fake.http_host, "v2", FAKE_TIMEOUT),
        down=transformer("down", f"127.0.0.1:{free_port()}", "grpc-v2", FAKE_TIMEOUT),
        fake=fake,
        sink=sink,
    )
    servers = [
        stack.predictor,
        stack.grpc,
        stack.rest,
        stack.v1,
        stack.fake_grpc,
        stack.fake_rest,
        stack.down,
    ]
    try:
        with started_together(servers):
            yield stack
    finally:
        fake.stop()
        sink.stop()
