"""REST plumbing that transformer and explainer share: reading request bodies (JSON with
``NaN`` literals, V2 JSON plus binary tensors) and putting their own routes in front of KServe's.

Imports KServe and FastAPI, so only the KServe-based components import it (``serving_common``'s
``__init__`` does not: the drift detector's virtualenv has neither).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["HEADER_LENGTH", "JsonInput", "ModelRoutes", "decode_v2", "install_first", "json_columns", "loads"]

HEADER_LENGTH = "inference-header-content-length"

Endpoint = Callable[[Request], Awaitable[Response]]


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
        except RecursionError:  # orjson stops at 1024 levels; the fallback must not crash
            raise InvalidInput(f"the request body is not JSON we accept: {e}") from e


def decode_v2(
    body: bytes,
    header_length: str | None,
    model_name: str,
    *,
    check_length: bool = True,
    expected: str = "",
) -> InferRequest:
    """A V2 request from REST bytes (JSON, or JSON plus binary tensors); every malformed body is
    an :class:`InvalidInput`. ``check_length``: reject a JSON length outside the body;
    ``expected``: appended to the message for a body that is not a V2 request."""
    try:
        json_length = int(header_length) if header_length else len(body)
    except ValueError as e:
        raise InvalidInput(f"'{HEADER_LENGTH}' must be an integer, not {header_length!r}") from e
    if check_length and not 0 < json_length <= len(body):
        raise InvalidInput(f"'{HEADER_LENGTH}' is {json_length} but the body has {len(body)} bytes")
    doc = loads(body[:json_length])
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise InvalidInput('expected a V2 inference request {"inputs": [...]}' + expected)
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


_DTYPES: dict[str, Any] = {
    "FP64": np.float64,
    "FP32": np.float32,
    "FP16": np.float16,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT16": np.int16,
    "INT8": np.int8,
    "UINT64": np.uint64,
    "UINT32": np.uint32,
    "UINT16": np.uint16,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
    "BYTES": np.object_,
}


@dataclass(frozen=True, slots=True)
class JsonInput:
    """A V2 input of a JSON body (``serving_common.records.V2Input``), read straight into numpy."""

    name: str
    datatype: str
    shape: list[int]
    data: Any
    parameters: dict[str, Any]

    def as_numpy(self) -> np.ndarray:
        dtype = _DTYPES.get(self.datatype)
        if dtype is None:
            raise ValueError(f"datatype {self.datatype!r} is not a V2 datatype")
        array = (
            np.array(self.data, dtype=dtype) if dtype is np.object_ else np.asarray(self.data, dtype=dtype)
        )
        return array.reshape(self.shape)


def json_columns(body: bytes, headers: Mapping[str, str]) -> tuple[str | None, list[JsonInput]] | None:
    """The ``id`` and inputs of a plain-JSON V2 request whose answer is plain JSON too (no binary
    tensors either way, no requested outputs), read without KServe's ``InferRequest``; ``None``
    for any other request (then :func:`decode_v2`, which also gives the precise 400s)."""
    if HEADER_LENGTH in headers:
        return None
    doc = loads(body)
    if not isinstance(doc, dict) or "outputs" in doc or not isinstance(doc.get("inputs"), list):
        return None
    params = doc.get("parameters")
    if params is not None and (not isinstance(params, dict) or params.get("binary_data_output")):
        return None
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        return None
    inputs: list[JsonInput] = []
    for item in doc["inputs"]:
        if not isinstance(item, dict) or not {"name", "datatype", "shape", "data"} <= item.keys():
            return None
        p = item.get("parameters") or {}
        if not isinstance(p, dict) or "binary_data_size" in p or not isinstance(item["shape"], list):
            return None
        inputs.append(JsonInput(str(item["name"]), str(item["datatype"]), item["shape"], item["data"], p))
    return rid, inputs


def install_first(app: FastAPI, routes: Sequence[tuple[str, Endpoint]]) -> None:
    """POST ``routes`` in front of KServe's (Starlette matches in registration order)."""
    for path, endpoint in routes:
        app.add_route(path, endpoint, methods=["POST"], include_in_schema=False)
    added = app.router.routes[-len(routes) :]
    del app.router.routes[-len(routes) :]
    app.router.routes[0:0] = added


class ModelRoutes:
    """Routes that serve the models of KServe's registry (subclasses add them with ``install``)."""

    def __init__(self, registry: ModelRepository) -> None:
        self.registry = registry

    def _model(self, name: str) -> Any:
        """The registered model ``name``: unknown is ``ModelNotFound``, not ready ``ModelNotReady``."""
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model
