"""The REST inference routes (V1 ``:predict`` and V2 ``/infer``), registered ahead of KServe's.

KServe 0.21's V2 route only reads a JSON body when the client sends
``Content-Type: application/json``; tritonclient's HTTP client sends none unless it adds binary
tensors, and KServe then answers 400 ("'inference-header-content-length' header is missing").
These routes read the body either way (JSON alone, or JSON plus binary tensors), call the model
exactly as KServe's routes do (``Model.__call__``: preprocess, predict, postprocess), answer
every error as ``{"error": message}`` with its status, and count every request, including
those whose body cannot even be read, in ``transformer_requests_total``. Everything else
(health, readiness, metadata, ``/metrics``) stays KServe's; gRPC is counted in ``model.py``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI
from kserve.protocol.infer_type import InferResponse
from serving_common.predictor_errors import http_status
from serving_common.rest import HEADER_LENGTH, ModelRoutes, decode_v2, install_first, loads
from starlette.requests import Request
from starlette.responses import Response

from transformer import metrics

__all__ = ["HEADER_LENGTH", "InferenceRoutes", "decode_v2"]

log = logging.getLogger("transformer.rest")
JSON = "application/json"


def decode_v1(body: bytes) -> Any:
    return loads(body)


class InferenceRoutes(ModelRoutes):
    def install(self, app: FastAPI) -> None:
        """Put the routes in front of KServe's."""
        install_first(
            app,
            [
                ("/v1/models/{model_name}:predict", self.predict_v1),
                ("/v2/models/{model_name}/infer", self.infer_v2),
                ("/v2/models/{model_name}/versions/{model_version}/infer", self.infer_v2),
            ],
        )

    async def _serve(self, request: Request, protocol: str) -> Response:
        start = time.perf_counter()
        name = request.path_params["model_name"]
        known = self.registry.get_model(name) is not None
        try:
            model = self._model(name)
            body = await request.body()
            if protocol == "rest_v1":
                payload = decode_v1(body)
            else:
                payload = decode_v2(body, request.headers.get(HEADER_LENGTH), name)
            result, response_headers = await model(payload, headers=dict(request.headers))
            skip = ("content-length", "content-type")
            headers = {k: v for k, v in response_headers.items() if k.lower() not in skip}
            if isinstance(result, InferResponse):
                content, json_length = result.to_rest()
                if json_length is None:
                    response = Response(orjson.dumps(content), media_type=JSON, headers=headers)
                else:
                    headers[HEADER_LENGTH] = str(json_length)
                    response = Response(content, media_type="application/octet-stream", headers=headers)
            else:
                response = Response(orjson.dumps(result), media_type=JSON, headers=headers)
        except Exception as exc:
            status = http_status(exc)
            rid = request.headers.get("x-request-id", "-")
            if status >= 500:
                log.error(
                    "%s %s request %s failed (%d): %s",
                    name,
                    protocol,
                    rid,
                    status,
                    exc,
                    exc_info=status == 500,
                )
            else:
                log.info("%s %s request %s rejected (%d): %s", name, protocol, rid, status, exc)
            response = Response(orjson.dumps({"error": str(exc)}), status_code=status, media_type=JSON)
        if known:  # an unknown name in the URL must not mint a new label value
            metrics.REQUESTS.labels(name, protocol, str(response.status_code)).inc()
            metrics.REQUEST_SECONDS.labels(name, protocol).observe(time.perf_counter() - start)
        return response

    async def predict_v1(self, request: Request) -> Response:
        return await self._serve(request, "rest_v1")

    async def infer_v2(self, request: Request) -> Response:
        return await self._serve(request, "rest_v2")
