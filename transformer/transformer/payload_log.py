"""What the payload logger (``--logger_url``) is given for a gRPC call, as KServe's agent would
log it (contract C3): the V2 JSON document the REST path would have carried. REST calls are
logged as the bytes that crossed the port, so they need nothing from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from kserve.protocol.infer_type import InferRequest

__all__ = ["CONTENT_TYPE", "grpc_request", "v2_document"]

CONTENT_TYPE = "application/json"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def grpc_request(request: InferRequest) -> bytes:
    """The V2 JSON request ``{"id", "inputs": [{"name", "shape", "datatype", "data"}], "parameters"?}``."""
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
    if request.parameters:
        body["parameters"] = {
            k: v for k, v in request.parameters.items() if isinstance(v, (str, int, float, bool))
        }
    return orjson.dumps(body)


def v2_document(doc: dict[str, Any]) -> bytes:
    """JSON bytes of a V2 response document (numpy arrays written as lists)."""
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
