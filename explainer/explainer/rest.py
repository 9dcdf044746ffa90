"""The explain routes, registered ahead of KServe's: V1 ``/v1/models/NAME:explain`` (what KServe
routes to an explainer) and V2 ``/v2/models/NAME/explain`` (a V2 inference request of raw records
in, a V2 response of attributions out).

KServe's own V1 explain route echoes the request's headers (``authorization`` included) back as
response headers; these routes answer with their own headers only, count every request in
``explainer_requests_total`` and turn every error into ``{"error": message}`` with its status.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.model import InferenceVerb
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest, InferResponse
from starlette.requests import Request
from starlette.responses import Response

from explainer import metrics
from explainer.errors import http_status

__all__ = ["ExplainRoutes", "decode_v2"]

log = logging.getLogger("explainer.rest")
HEADER_LENGTH = "inference-header-content-length"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def loads(body: bytes) -> Any:
    """JSON, also with the ``NaN`` literals Python's json module and tritonclient write for
    missing numbers (they become NaN: a missing value, handled by the feature's policy)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            return json.loads(body)
        except ValueError:
            raise InvalidInput(f"the request body is not JSON: {e}") from e


def decode_v2(body: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """A V2 request from REST bytes (JSON, or JSON plus binary tensors); malformed is a 400."""
    try:
        json_length = int(header_length) if header_length else len(body)
    except ValueError as e:
        raise InvalidInput(f"'{HEADER_LENGTH}' must be an integer, not {header_length!r}") from e
    doc = loads(body[:json_length])
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise InvalidInput('expected a V2 inference request {"inputs": [...]} of raw records')
    for i, inp in enumerate(doc["inputs"]):
        if not isinstance(inp, dict) or not {"name", "datatype", "shape"} <= inp.keys():
            raise InvalidInput(f"input {i} must be an object with 'name', 'datatype', 'shape' and 'data'")
    if b"NaN" in body[:json_length] or b"Infinity" in body[:json_length]:  # re-encoded: NaN -> null
        header = orjson.dumps(doc)
        body, json_length = header + body[json_length:], len(header)
    try:
        return InferRequest.from_bytes(body, json_length, model_name)
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"malformed V2 inference request: {e!r}") from e


class ExplainRoutes:
    def __init__(self, registry: ModelRepository) -> None:
        self.registry = registry

    def install(self, app: FastAPI) -> None:
        routes = [
            ("/v1/models/{model_name}:explain", self.explain_v1),
            ("/v2/models/{model_name}/explain", self.explain_v2),
        ]
        for path, endpoint in routes:
            app.add_route(path, endpoint, methods=["POST"], include_in_schema=False)
        added = app.router.routes[-len(routes) :]
        del app.router.routes[-len(routes) :]
        app.router.routes[0:0] = added

    def _model(self, name: str) -> Any:
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model

    async def _serve(self, request: Request, protocol: str) -> Response:
        start = time.perf_counter()
        name = request.path_params["model_name"]
        try:
            model = self._model(name)
            body = await request.body()
            if protocol == "rest_v1":
                payload: Any = loads(body)
            else:
                payload = decode_v2(body, request.headers.get(HEADER_LENGTH), name)
            result, _ = await model(payload, headers=dict(request.headers), verb=InferenceVerb.EXPLAIN)
            if isinstance(result, InferResponse):
                result, _ = result.to_rest()
            rid = result.get("id") if isinstance(result, dict) else None
            response = _json(result, headers={"x-request-id": rid} if rid else None)
        except Exception as exc:
            status = http_status(exc)
            if status >= 500:
                log.error("explain failed (%d): %s", status, exc, exc_info=status == 500)
            else:
                log.info("explain rejected (%d): %s", status, exc)
            response = _json({"error": str(exc)}, status)
        metrics.REQUESTS.labels(name, protocol, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(name, protocol).observe(time.perf_counter() - start)
        return response

    async def explain_v1(self, request: Request) -> Response:
        return await self._serve(request, "rest_v1")

    async def explain_v2(self, request: Request) -> Response:
        return await self._serve(request, "rest_v2")
