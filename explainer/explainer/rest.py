"""The explain routes, registered ahead of KServe's: V1 ``/v1/models/NAME:explain`` (what KServe
routes to an explainer) and V2 ``/v2/models/NAME/explain`` (a V2 inference request of raw records
in, a V2 response of attributions out).

KServe's own V1 explain route echoes the request's headers (``authorization`` included) back as
response headers; these routes answer with their own headers only, count every request in
``explainer_requests_total`` and turn every error into ``{"error": message}`` with its status.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferResponse
from serving_common.framework.rest import HEADER_LENGTH, ModelRoutes, decode_v2, install_first, loads
from serving_common.framework.status import http_status, public_message
from serving_common.headers import new_id
from starlette.requests import Request
from starlette.responses import Response

from explainer import metrics

__all__ = ["ExplainRoutes", "decode_v2"]

log = logging.getLogger("explainer.rest")
RECORDS = " of raw records"
"""Appended to the 400 for a body that is not a V2 request."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class ExplainRoutes(ModelRoutes):
    def install(self, app: FastAPI) -> None:
        install_first(
            app,
            [
                ("/v1/models/{model_name}:explain", self.explain_v1),
                ("/v2/models/{model_name}/explain", self.explain_v2),
            ],
        )

    async def _serve(self, request: Request, protocol: str) -> Response:
        start = time.perf_counter()
        name = request.path_params["model_name"]
        try:
            model = self._model(name)
            body = await request.body()
            if protocol == "rest_v1":
                payload: Any = loads(body)
            else:
                payload = decode_v2(
                    body, request.headers.get(HEADER_LENGTH), name, check_length=False, expected=RECORDS
                )
            result, _ = await model(payload, headers=dict(request.headers), verb=InferenceVerb.EXPLAIN)
            if isinstance(result, InferResponse):
                result, _ = result.to_rest()
            rid = result.get("id") if isinstance(result, dict) else None
            response = _json(result, headers={"x-request-id": rid} if rid else None)
        except Exception as exc:
            status = http_status(exc)
            error_id = new_id()
            if status >= 500:
                log.error(
                    "explain failed (%d, error id %s): %s", status, error_id, exc, exc_info=status == 500
                )
            else:
                log.info("explain rejected (%d): %s", status, exc)
            response = _json({"error": public_message(exc, status, error_id)}, status)
        metrics.REQUESTS.labels(name, protocol, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(name, protocol).observe(time.perf_counter() - start)
        return response

    async def explain_v1(self, request: Request) -> Response:
        return await self._serve(request, "rest_v1")

    async def explain_v2(self, request: Request) -> Response:
        return await self._serve(request, "rest_v2")
