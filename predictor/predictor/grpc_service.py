"""The gRPC ``ModelInfer`` fast path, on KServe's own gRPC server and servicer.

KServe's servicer turns every call into ``InferRequest`` objects, walks the data plane and
the model's hook chain, converts back with ``to_grpc``, and its server wraps every call in two
interceptors (one logs a line per call, one maps exceptions to status codes). Ours keeps
KServe's servicer methods for everything else (health, metadata, readiness, repository) and
overrides ``ModelInfer``: protobuf tensors straight to numpy (``raw_input_contents`` as
views), the same validation as REST (``signature.py``), the inference thread, and raw output
contents straight from numpy. Exceptions map to status codes in each method (``_mapped``),
with the mapping of ``errors.py``, instead of in a per-call interceptor (measured: ~15% of a
call's CPU). KServe's ``request_predict_seconds`` histogram is still observed.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from typing import Any

import numpy as np
from grpc import StatusCode, aio
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.metrics import PREDICT_HIST_TIME, get_labels
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import add_GRPCInferenceServiceServicer_to_server
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from predictor import metrics
from predictor.errors import grpc_code
from predictor.model import OnnxModel, Tensor

log = logging.getLogger("predictor.grpc")

# V2 datatype -> the InferTensorContents field that carries it
_CONTENTS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def _tensors(request: pb.ModelInferRequest) -> Iterator[Tensor]:
    raw = request.raw_input_contents
    for i, t in enumerate(request.inputs):
        if raw:
            data: Any = raw[i]
        else:
            field = _CONTENTS.get(t.datatype)
            data = list(getattr(t.contents, field)) if field else []
        yield Tensor(t.name, t.datatype, list(t.shape), data)


class FastInferenceServicer(InferenceServicer):  # type: ignore[misc]
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: aio.ServicerContext
    ) -> pb.ModelInferResponse:
        start = time.perf_counter()
        name = request.model_name
        model = self._data_plane.model_registry.get_model(name)
        if model is None or not model.ready:
            exc = ModelNotFound(name) if model is None else ModelNotReady(name)
            await _abort(context, grpc_code(exc), exc)
        assert isinstance(model, OnnxModel)
        code = "OK"
        try:
            self.validate_grpc_request(request)
            feeds = model.feeds_from_tensors(_tensors(request))
            outputs = model.check_outputs([o.name for o in request.outputs])
            arrays = await model.infer(feeds, outputs)
            return model_infer_response(model, request.id or str(uuid.uuid4()), outputs, arrays)
        except Exception as exc:
            code = grpc_code(exc)
            await _abort(context, code, exc)
            raise  # abort raises; this keeps type checkers honest
        finally:
            elapsed = time.perf_counter() - start
            metrics.REQUESTS.labels(name, "grpc_v2", code).inc()
            metrics.REQUEST_SECONDS.labels(name, "grpc_v2").observe(elapsed)
            PREDICT_HIST_TIME.labels(**get_labels(name)).observe(elapsed)


async def _abort(context: aio.ServicerContext, code: str, exc: BaseException) -> None:
    if code == "INTERNAL":
        log.error("gRPC call failed: %s", exc, exc_info=exc)
        await context.abort(StatusCode.INTERNAL, "Internal server error")
    await context.abort(StatusCode[code], str(exc))


def _mapped(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(self: Any, request: Any, context: aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except Exception as exc:
            await _abort(context, grpc_code(exc), exc)

    return call


for _name in (
    "ServerLive",
    "ServerReady",
    "ServerMetadata",
    "ModelReady",
    "ModelMetadata",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
):
    setattr(FastInferenceServicer, _name, _mapped(getattr(InferenceServicer, _name)))


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


class FastGRPCServer(GRPCServer):  # type: ignore[misc]
    """KServe's GRPCServer with our servicer and no per-call interceptors."""

    async def start(self, max_workers: int) -> None:
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(),
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                ("grpc.max_receive_message_length", self._kwargs.get("grpc_max_receive_message_length")),
            ],
        )
        servicer = FastInferenceServicer(self._data_plane, self._model_repository_extension)
        add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_insecure_port(f"[::]:{self._port}")
        await self._server.start()
        await self._server.wait_for_termination()
