"""Issue 16: the transformer's and explainer's gRPC port is never shared, even when the start-up
port check is bypassed (or raced): KServe's ``GRPCServer`` binds with ``SO_REUSEPORT``, ours
(``serving_common.framework.grpc_server.ExclusiveGRPCServer``) does not and says which flag."""

from __future__ import annotations

import pytest
from grpc import aio
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from operability_runs import listening
from serving_common.framework.grpc_server import ExclusiveGRPCServer, server_options
from serving_common.operability import EXIT_PORT_IN_USE, PortInUseError
from support import free_port


def _server(port: int) -> ExclusiveGRPCServer:
    dataplane = DataPlane(model_registry=None)
    return ExclusiveGRPCServer(
        port,
        dataplane,
        ModelRepositoryExtension(model_registry=dataplane.model_registry),
        kwargs={"grpc_max_send_message_length": 1 << 20, "grpc_max_receive_message_length": 1 << 21},
    )


async def test_kserve_options_would_share_a_reuseport_listener() -> None:
    """The hazard itself: gRPC with KServe's options binds a port a SO_REUSEPORT socket holds."""
    port = free_port()
    with listening(port, reuseport=True):
        server = aio.server(options=[("grpc.max_receive_message_length", 1 << 21)])
        try:
            assert server.add_insecure_port(f"[::]:{port}") == port
        finally:
            await server.stop(None)


async def test_exclusive_server_refuses_a_port_a_reuseport_listener_holds() -> None:
    port = free_port()
    server = _server(port)
    with listening(port, reuseport=True), pytest.raises(PortInUseError) as err:
        server.bind(1)
    assert err.value.exit_code == EXIT_PORT_IN_USE
    assert str(err.value) == (
        f"--grpc_port {port}: port already in use by another process; "
        "expected a free port (choose another or stop that process)"
    )


async def test_exclusive_server_binds_a_free_port_with_kserves_message_sizes() -> None:
    port = free_port()
    server = _server(port)
    server.bind(1)
    try:
        with pytest.raises(OSError), listening(port, reuseport=True):
            pass  # the port is ours alone now: even a SO_REUSEPORT socket cannot join
    finally:
        await server.stop()


def test_server_options_are_kserves_sizes_and_no_reuseport() -> None:
    options = server_options({"grpc_max_send_message_length": 10, "grpc_max_receive_message_length": 20})
    assert options == [
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", 10),
        ("grpc.max_receive_message_length", 20),
    ]
    assert server_options({"grpc_max_send_message_length": None}) == [("grpc.so_reuseport", 0)]
