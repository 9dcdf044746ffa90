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
* health, readiness and metadata answer from the model registry, as KServe's servicer does
  (readiness is false while draining, ``drain.py``); repository load/unload are UNIMPLEMENTED:
  management is never served on the inference ports (``PREDICTOR_MANAGEMENT_PORT``, REST);
* deadlines: a call whose deadline has passed or whose client is gone is not run (DEADLINE_EXCEEDED /
  CANCELLED), and one that finishes after its deadline is counted so, never as OK; more than
  ``PREDICTOR_GRPC_MAX_INFLIGHT`` calls at once are refused with RESOURCE_EXHAUSTED by gRPC itself;
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
from serving_common.drain import Drain
from serving_common.headers import header_safe
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
_NO_MANAGEMENT = "model repository management is not served on this port (see PREDICTOR_MANAGEMENT_PORT)"


def _tensors(request: pb.ModelInferRequest) -> Iterator[Tensor]:
    raw = request.raw_input_contents
    for i, t in enumerate(request.inputs):
        if raw:
            data: Any = raw[i]
        else:
            field = CONTENTS.get(t.datatype) if t.datatype != "BYTES" else None
            data = list(getattr(t.contents, field)) if field else []
        yield Tensor(t.name, t.datatype, list(t.shape), data)


class CallExpired(Exception):
    """The call's deadline passed or its client went away before the work ran."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, CallExpired):
        context.abort(grpc.StatusCode[exc.code], str(exc))
    code = grpc_code(exc)
    if code == "INTERNAL":
        error_id = new_id()
        log.error("gRPC call failed (error id %s): %s", error_id, exc, exc_info=exc)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error (error id {error_id})")
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


def _expired(context: grpc.ServicerContext) -> str | None:
    """``DEADLINE_EXCEEDED`` / ``CANCELLED`` when the call's answer can no longer reach anyone."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    if not context.is_active():
        return "CANCELLED"
    return None


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
        loop: asyncio.AbstractEventLoop,
        drain: Drain,
        payload_hook: PayloadHook | None = None,
    ) -> None:
        self.payload_hook = payload_hook
        self.dataplane = dataplane
        self.registry: ModelRepository = dataplane.model_registry
        self.loop = loop
        self.drain = drain

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
        ready = bool(models) and all(m.ready for m in models) and not self.drain.draining
        return pb.ServerReadyResponse(ready=ready)

    @_mapped
    def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        ready = self._model(request.name, ready=False).ready and not self.drain.draining
        return pb.ModelReadyResponse(ready=ready)

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

    def RepositoryModelLoad(self, request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, _NO_MANAGEMENT)

    def RepositoryModelUnload(self, request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, _NO_MANAGEMENT)

    @_traced
    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        start = time.perf_counter()
        received_ns = time.time_ns()
        name = request.model_name
        metadata = dict(context.invocation_metadata())
        rid = metadata.get("x-request-id") or header_safe(request.id) or new_id()
        REQUEST_ID.set(rid)  # every call: pooled threads
        context.send_initial_metadata((("x-request-id", rid),))
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
            expired = _expired(context)  # waited in gRPC's queue past its deadline: drop the work
            if expired is not None:
                raise CallExpired(expired, "the call's deadline passed before it was run")
            arrays = model.infer_blocking(feeds, outputs)
            response = model_infer_response(model, header_safe(request.id) or rid, outputs, arrays)
            expired = _expired(context)
            if expired is not None:  # nobody receives this answer: not an OK
                raise CallExpired(expired, "the call's deadline passed while it ran")
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
            code = exc.code if isinstance(exc, CallExpired) else grpc_code(exc)
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
        max_inflight: int | None = None,
    ) -> None:
        self.port = port
        self.grace_period = grace_period
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
            options=options,
            maximum_concurrent_rpcs=max_inflight,
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
