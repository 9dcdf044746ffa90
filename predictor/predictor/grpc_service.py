"""The gRPC server: the Open Inference Protocol's ``GRPCInferenceService`` on gRPC's threaded server.

KServe serves gRPC with ``grpc.aio``: every call becomes ``InferRequest`` objects, walks the
data plane and the model's hook chain, is converted back with ``to_grpc``, and passes two
interceptors (one logs a line per call). Measured on one core, grpc.aio's own per-call cost
was ~550 us of CPU before any work, the threaded server's ~280-450 us. So this module serves
the same service on ``grpc.server`` with a thread pool (``--max_threads``, KServe's flag):

* ``ModelInfer`` decodes protobuf tensors straight to numpy (``raw_input_contents`` as views),
  validates them like REST does (``signature.py``), runs ``session.run`` on the gRPC worker
  thread (never on the event loop, which serves REST), and writes raw output contents straight
  from numpy;
* health, readiness and metadata answer from the model registry, as KServe's servicer does;
  repository load/unload run KServe's extension on the event loop;
* errors map to status codes in one place (``errors.grpc_code``), per call, no interceptors;
* every client ``ModelInfer`` goes through the payload hook (``payload_hook.py``) before it is
  answered, as the V2 JSON REST would have carried (``grpc_json.py``, made in the logger's thread).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import numpy as np
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import (
    GRPCInferenceServiceServicer,
    add_GRPCInferenceServiceServicer_to_server,
)
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from serving_common.operability import tracing
from serving_common.operability.logs import REQUEST_ID, TRACE_ID, trace_id_of

from predictor import metrics
from predictor.caller import CALLER_HEADER, CLIENT, caller
from predictor.errors import grpc_code
from predictor.grpc_json import CONTENTS, request_json, response_json
from predictor.ids import new_id
from predictor.model import OnnxModel, Tensor
from predictor.payload_hook import PayloadHook

log = logging.getLogger("predictor.grpc")

JSON = "application/json"


def _tensors(request: pb.ModelInferRequest) -> Iterator[Tensor]:
    raw = request.raw_input_contents
    for i, t in enumerate(request.inputs):
        if raw:
            data: Any = raw[i]
        else:
            field = CONTENTS.get(t.datatype) if t.datatype != "BYTES" else None
            data = list(getattr(t.contents, field)) if field else []
        yield Tensor(t.name, t.datatype, list(t.shape), data)


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    code = grpc_code(exc)
    if code == "INTERNAL":
        log.error("gRPC call failed: %s", exc, exc_info=exc)
        context.abort(grpc.StatusCode.INTERNAL, "Internal server error")
    context.abort(grpc.StatusCode[code], str(exc))


def _traced(method: Callable[..., Any]) -> Callable[..., Any]:
    """A span per call when tracing is on (child of the caller's ``traceparent`` metadata)."""

    @functools.wraps(method)
    def call(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        if not tracing.enabled():
            return method(self, request, context)
        metadata = dict(context.invocation_metadata())
        with tracing.server_span("ModelInfer", metadata, model=request.model_name):
            return method(self, request, context)

    return call


def _mapped(method: Callable[..., Any]) -> Callable[..., Any]:
    """Exceptions of a servicer method become the status codes of ``errors.py``."""

    @functools.wraps(method)
    def call(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            _abort(context, exc)

    return call


class InferenceService(GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        dataplane: DataPlane,
        repository: ModelRepositoryExtension,
        loop: asyncio.AbstractEventLoop,
        payload_hook: PayloadHook | None = None,
    ) -> None:
        self.payload_hook = payload_hook
        self.dataplane = dataplane
        self.registry: ModelRepository = dataplane.model_registry
        self.repository = repository
        self.loop = loop

    def _model(self, name: str, *, ready: bool = True) -> OnnxModel:
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if ready and not model.ready:
            raise ModelNotReady(name)
        assert isinstance(model, OnnxModel)
        return model

    @_mapped
    def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @_mapped
    def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        models = self.registry.get_models().values()
        return pb.ServerReadyResponse(ready=bool(models) and all(m.ready for m in models))

    @_mapped
    def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self._model(request.name, ready=False).ready)

    @_mapped
    def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        meta = self.dataplane.metadata()
        return pb.ServerMetadataResponse(
            name=meta["name"], version=meta["version"], extensions=meta["extensions"]
        )

    @_mapped
    def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        if request.version:
            raise NotImplementedError("model versions are not supported; omit 'version'")
        model = self._model(request.name, ready=False)
        return pb.ModelMetadataResponse(
            name=model.name,
            versions=[model.version] if model.version else [],
            platform="onnxruntime",
            inputs=model.get_input_types(),
            outputs=model.get_output_types(),
        )

    @_mapped
    def RepositoryModelLoad(self, request: Any, context: Any) -> pb.RepositoryModelLoadResponse:
        done = asyncio.run_coroutine_threadsafe(self.repository.load(request.model_name), self.loop)
        response = done.result(timeout=300)
        return pb.RepositoryModelLoadResponse(model_name=response["name"], isLoaded=response["load"])

    @_mapped
    def RepositoryModelUnload(self, request: Any, context: Any) -> pb.RepositoryModelUnloadResponse:
        done = asyncio.run_coroutine_threadsafe(self.repository.unload(request.model_name), self.loop)
        response = done.result(timeout=300)
        return pb.RepositoryModelUnloadResponse(model_name=response["name"], isUnloaded=response["unload"])

    @_traced
    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        start = time.perf_counter()
        received_ns = time.time_ns()
        name = request.model_name
        metadata = dict(context.invocation_metadata())
        REQUEST_ID.set(metadata.get("x-request-id") or request.id or None)  # every call: pooled threads
        if not tracing.enabled():  # else the span set it
            TRACE_ID.set(trace_id_of(metadata.get("traceparent")))
        who = caller(metadata.get(CALLER_HEADER))
        hook = self.payload_hook if who == CLIENT else None
        code = "OK"
        try:
            model = self._model(name)
            InferenceServicer.validate_grpc_request(request)
            feeds = model.feeds_from_tensors(_tensors(request))
            outputs = model.check_outputs([o.name for o in request.outputs])
            arrays = model.infer_blocking(feeds, outputs)
            response = model_infer_response(model, request.id or new_id(), outputs, arrays)
            if hook is not None:  # queued before the answer goes out; JSON made in the logger's thread
                hook.log_exchange(
                    metadata,
                    functools.partial(request_json, request),
                    JSON,
                    True,
                    functools.partial(response_json, response),
                    received_ns,
                )
            return response
        except Exception as exc:
            code = grpc_code(exc)
            if isinstance(exc, ModelNotFound):
                code = "unknown"  # not counted: the label would be any name a client sends
            if hook is not None:
                request_doc = functools.partial(request_json, request)
                hook.log_exchange(metadata, request_doc, JSON, False, b"", received_ns)
            _abort(context, exc)
            raise  # abort raises; this keeps type checkers honest
        finally:
            if code != "unknown":
                elapsed = time.perf_counter() - start
                metrics.REQUEST_METRICS.done(name, "grpc_v2", code, code == "OK", elapsed, who)


def model_infer_response(
    model: OnnxModel, request_id: str, outputs: list[str], arrays: list[np.ndarray]
) -> pb.ModelInferResponse:
    datatypes = model.output_datatypes
    return pb.ModelInferResponse(
        model_name=model.name,
        model_version=model.version or "",
        id=request_id,
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=n, datatype=datatypes[n], shape=a.shape)
            for n, a in zip(outputs, arrays, strict=True)
        ],
        raw_output_contents=[np.ascontiguousarray(a).tobytes() for a in arrays],
    )


class ThreadedGRPCServer:
    """Owns the ``grpc.server``; ``stop`` has the signature KServe's ModelServer calls."""

    def __init__(
        self,
        port: int,
        service: InferenceService,
        threads: int,
        options: list[tuple[str, Any]],
        grace_period: float,
    ) -> None:
        self.port = port
        self.grace_period = grace_period
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"), options=options
        )
        add_GRPCInferenceServiceServicer_to_server(service, self._server)
        if self._server.add_insecure_port(f"[::]:{port}") == 0:
            raise RuntimeError(f"cannot listen on gRPC port {port}")

    def start(self) -> None:
        self._server.start()
        log.info("gRPC server listening on [::]:%d", self.port)

    async def stop(self, sig: int | None = None) -> None:
        event = self._server.stop(grace=self.grace_period)
        await asyncio.get_running_loop().run_in_executor(None, event.wait)
        log.info("gRPC server stopped")
