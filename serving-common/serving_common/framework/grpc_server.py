"""KServe's gRPC server for the transformer and the explainer, with three things KServe's lacks.

* **A port is never shared.** KServe's ``GRPCServer.start`` builds ``grpc.aio.server(...)``
  without ``("grpc.so_reuseport", 0)``, so gRPC binds with ``SO_REUSEPORT`` and a second server on
  the same port *starts* (the kernel then splits connections between the two). Here the option is
  set, so a taken port fails the bind, and that failure is a :class:`PortInUseError` naming
  ``--grpc_port`` (exit 5), even when the start-up port check (``operability.ports``) was raced.
* **Model metadata as REST says it**: ``versions`` (KServe's servicer drops them) and ``platform``
  from the data plane (:mod:`serving_common.framework.metadata`).
* **``x-request-id`` on every ``ModelInfer`` answer** (initial metadata): the caller's, else the
  request's ``id``, else a new one; the same id goes into the request (its ``id``, so the model's
  answer and its log lines carry it) and onto the log lines of the call.

Message sizes stay KServe's (``--grpc_max_send_message_length`` / ``--grpc_max_receive_message_length``).
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

from grpc import aio
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import add_GRPCInferenceServiceServicer_to_server
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from serving_common.headers import header_safe, new_id
from serving_common.operability import PortInUseError
from serving_common.operability.logs import REQUEST_ID
from serving_common.operability.ports import in_use_message

__all__ = ["ExclusiveGRPCServer", "RequestIdServicer", "server_options"]

REQUEST_ID_KEY = "x-request-id"


def server_options(kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """gRPC options: KServe's message sizes (from its parsed flags) and no ``SO_REUSEPORT``."""
    options: list[tuple[str, Any]] = [("grpc.so_reuseport", 0)]
    for flag in ("grpc_max_send_message_length", "grpc_max_receive_message_length"):
        if kwargs.get(flag) is not None:
            options.append((f"grpc.{flag[len('grpc_') :]}", int(kwargs[flag])))
    return options


class RequestIdServicer(InferenceServicer):  # type: ignore[misc]
    """KServe's servicer with the request id on every inference answer and complete model metadata."""

    async def ModelInfer(self, request: pb.ModelInferRequest, context: aio.ServicerContext) -> Any:
        given = next(
            (v for k, v in context.invocation_metadata() or () if k.lower() == REQUEST_ID_KEY and v), None
        )
        rid = str(given or header_safe(request.id) or new_id())
        if given or not header_safe(request.id):  # the model's request id and its answer's id: the
            request.id = rid  # header wins; an id that cannot be a header value is replaced
        REQUEST_ID.set(rid)
        await context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
        return await super().ModelInfer(request, context)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        metadata = await self._data_plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata.get("versions") or [],
            platform=metadata["platform"],
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )


class ExclusiveGRPCServer(GRPCServer):  # type: ignore[misc]
    """KServe's ``GRPCServer`` (same interceptors, same servicer API) whose port is never shared.

    :meth:`bind` (on the loop that will serve, before anything else serves) builds the server and
    binds its port; :meth:`start` binds if that was not done, then serves until stopped."""

    def bind(self, max_workers: int) -> None:
        """Builds the server and binds ``[::]:port``; a taken port is :class:`PortInUseError`."""
        server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=server_options(self._kwargs),
        )
        add_GRPCInferenceServiceServicer_to_server(
            RequestIdServicer(self._data_plane, self._model_repository_extension), server
        )
        try:
            bound = server.add_insecure_port(f"[::]:{self._port}")
        except RuntimeError as e:  # grpcio raises when the bind fails (older versions returned 0)
            raise PortInUseError(in_use_message("--grpc_port", self._port)) from e
        if bound == 0:
            raise PortInUseError(in_use_message("--grpc_port", self._port))
        self._server = server

    async def start(self, max_workers: int) -> None:
        if self._server is None:
            self.bind(max_workers)
        await self._server.start()
        await self._server.wait_for_termination()
