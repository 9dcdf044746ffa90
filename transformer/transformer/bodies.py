"""Request and response bodies for the payload logger (``--logger_url``), as KServe's agent logs them.

The agent logs what crosses the component's HTTP port: the V1 or V2 JSON request, and the JSON
response of a successful call. gRPC requests are logged as their V2 JSON equivalent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from kserve.protocol.infer_type import InferRequest

__all__ = ["CONTENT_TYPE", "dumps", "flat", "v2_request"]

CONTENT_TYPE = "application/json"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def v2_request(request: InferRequest) -> dict[str, Any]:
    """The V2 JSON form of a request that came over REST or gRPC."""
    inputs = []
    for inp in request.inputs:
        data: list[Any] | None
        try:
            data = [_plain(v) for v in np.asarray(inp.as_numpy()).reshape(-1).tolist()]
        except (ValueError, TypeError):
            data = inp.data if isinstance(inp.data, list) else None
        inputs.append({"name": inp.name, "shape": list(inp.shape), "datatype": inp.datatype, "data": data})
    body: dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    return body


def flat(data: Any) -> list[Any]:
    """A tensor's elements as a flat JSON-able list."""
    return [_plain(v) for v in np.asarray(data).reshape(-1).tolist()]


def dumps(body: Any) -> bytes:
    """JSON bytes of a request or response body (a dict, or a V2 request)."""
    if isinstance(body, InferRequest):
        body = v2_request(body)
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
