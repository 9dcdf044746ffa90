"""The REST inference routes (V2 ``/infer`` and V1 ``:predict``), registered ahead of KServe's.

KServe's own routes stay for everything else (health, metadata, readiness, model repository).
Ours go first on the same FastAPI app and are plain Starlette endpoints: no request model, no
response re-validation, bodies decoded straight into numpy (see ``codec.py``). They still call
the model through KServe's ``Model.__call__`` so KServe's own histograms keep their meaning.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferResponse
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from predictor import codec, metrics
from predictor.errors import http_status
from predictor.model import OnnxModel

log = logging.getLogger("predictor.rest")
JSON = "application/json"
OCTET = "application/octet-stream"

PayloadHook = Callable[[Mapping[str, str], bytes, str, bytes, str], None]
"""Called after each successful request: (request headers, request body, its content type,
response body, its content type)."""


class _Counters:
    """Cached metric children: ``labels()`` once per (model, protocol, code)."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._seconds: dict[tuple[str, str], Any] = {}

    def done(self, model: str, protocol: str, code: int, seconds: float) -> None:
        key = (model, protocol, str(code))
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = metrics.REQUESTS.labels(*key)
        counter.inc()
        hist = self._seconds.get((model, protocol))
        if hist is None:
            hist = self._seconds[(model, protocol)] = metrics.REQUEST_SECONDS.labels(model, protocol)
        hist.observe(seconds)


class InferenceRoutes:
    def __init__(self, registry: ModelRepository, payload_hook: PayloadHook | None = None) -> None:
        self.registry = registry
        self.payload_hook = payload_hook
        self.counters = _Counters()

    def install(self, app: FastAPI) -> None:
        """Put our routes in front of KServe's (Starlette matches in registration order)."""
        routes = [
            ("/v2/models/{model_name}/infer", self.infer_v2),
            ("/v2/models/{model_name}/versions/{model_version}/infer", self.infer_v2),
            ("/v1/models/{model_name}:predict", self.predict_v1),
        ]
        for path, endpoint in routes:
            app.add_route(path, endpoint, methods=["POST"], include_in_schema=False)
        added = app.router.routes[-len(routes) :]
        del app.router.routes[-len(routes) :]
        app.router.routes[0:0] = added

    def _model(self, name: str) -> OnnxModel:
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        assert isinstance(model, OnnxModel)
        return model

    @staticmethod
    def _error(exc: BaseException, status: int) -> Response:
        if status >= 500:
            log.error("inference failed: %s", exc, exc_info=exc)
        else:
            log.info("rejected request (%d): %s", status, exc)
        return Response(codec.dumps({"error": str(exc)}), status_code=status, media_type=JSON)

    async def infer_v2(self, request: Request) -> Response:
        start = time.perf_counter()
        name = request.path_params["model_name"]
        body = b""
        try:
            model = self._model(name)
            body = await request.body()
            headers = request.headers
            infer_request, binary_all = codec.decode_v2(body, headers.get(codec.HEADER_LENGTH), name)
            if not infer_request.id:
                infer_request.id = headers.get("x-request-id") or str(uuid.uuid4())
            result, _ = await model(infer_request, headers=dict(headers))
            assert isinstance(result, InferResponse)
            content, json_length = codec.encode_v2(
                result, codec.binary_outputs(infer_request, binary_all), binary_all
            )
            if json_length is None:
                response = Response(content, media_type=JSON)
            else:
                response = Response(
                    content, media_type=OCTET, headers={codec.HEADER_LENGTH: str(json_length)}
                )
            status = 200
        except Exception as exc:
            status = http_status(exc)
            response = self._error(exc, status)
        self.counters.done(name, "rest_v2", status, time.perf_counter() - start)
        if self.payload_hook is not None and status == 200:
            self.payload_hook(
                request.headers,
                body,
                request.headers.get("content-type", JSON),
                bytes(response.body),
                response.media_type or JSON,
            )
        return response

    async def predict_v1(self, request: Request) -> Response:
        start = time.perf_counter()
        name = request.path_params["model_name"]
        body = b""
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        try:
            model = self._model(name)
            body = await request.body()
            doc = codec.loads(body)
            result, _ = await model(doc, headers=dict(request.headers))
            response = Response(codec.dumps(result), media_type=JSON, headers={"x-request-id": request_id})
            status = 200
        except Exception as exc:
            status = http_status(exc)
            response = self._error(exc, status)
        self.counters.done(name, "rest_v1", status, time.perf_counter() - start)
        if self.payload_hook is not None and status == 200:
            self.payload_hook(request.headers, body, JSON, bytes(response.body), JSON)
        return response
