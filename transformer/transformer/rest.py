"""The V2 REST inference route, registered ahead of KServe's own.

KServe 0.21's V2 route only reads a JSON body when the client sends
``Content-Type: application/json``; tritonclient's HTTP client sends none unless it adds binary
tensors, and KServe then answers 400 ("'inference-header-content-length' header is missing").
This route reads the body either way (the JSON header alone, or JSON plus binary tensors) and
then goes through the model exactly as KServe's route does. Everything else (V1 ``:predict``,
health, readiness, metadata, ``/metrics``) stays KServe's.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest, InferResponse
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["HEADER_LENGTH", "V2Route"]

HEADER_LENGTH = "inference-header-content-length"


def decode(body: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """A V2 request from REST bytes; every malformed body is an :class:`InvalidInput`."""
    try:
        json_length = int(header_length) if header_length else len(body)
    except ValueError as e:
        raise InvalidInput(f"'{HEADER_LENGTH}' must be an integer, not {header_length!r}") from e
    if not 0 < json_length <= len(body):
        raise InvalidInput(f"'{HEADER_LENGTH}' is {json_length} but the body has {len(body)} bytes")
    try:
        doc = orjson.loads(body[:json_length])
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"the request body is not JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise InvalidInput('expected a V2 inference request {"inputs": [...]}')
    for i, inp in enumerate(doc["inputs"]):
        if not isinstance(inp, dict) or not {"name", "datatype", "shape"} <= inp.keys():
            raise InvalidInput(f"input {i} must be an object with 'name', 'datatype', 'shape' and 'data'")
    try:
        return InferRequest.from_bytes(body, json_length, model_name)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"malformed V2 inference request: {e!r}") from e


class V2Route:
    def __init__(self, registry: ModelRepository) -> None:
        self.registry = registry

    def install(self, app: FastAPI) -> None:
        """Put the route in front of KServe's (Starlette matches in registration order)."""
        app.add_route("/v2/models/{model_name}/infer", self.infer, methods=["POST"], include_in_schema=False)
        app.router.routes.insert(0, app.router.routes.pop())

    async def infer(self, request: Request) -> Response:
        name = request.path_params["model_name"]
        model: Any = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        infer_request = decode(await request.body(), request.headers.get(HEADER_LENGTH), name)
        result, response_headers = await model(infer_request, headers=dict(request.headers))
        assert isinstance(result, InferResponse)
        content, json_length = result.to_rest()
        headers = {
            k: v for k, v in response_headers.items() if k.lower() not in ("content-length", "content-type")
        }
        if json_length is None:
            return Response(orjson.dumps(content), media_type="application/json", headers=headers)
        headers[HEADER_LENGTH] = str(json_length)
        return Response(content, media_type="application/octet-stream", headers=headers)
