"""gRPC exchanges as the V2 JSON documents the REST path would have carried (what gets logged).

KServe's agent sees HTTP only, so the payload logger logs a gRPC ``ModelInfer`` as the JSON a
REST client would have sent and received (``docs/contracts.md``, C3)::

    request:  {"id", "inputs": [{"name", "shape", "datatype", "data"}], "parameters"?}
    response: {"id", "model_name", "model_version", "outputs": [{"name", "shape", "datatype", "data"}]}

``data`` is flat, in row-major order, from ``raw_input_contents`` / ``raw_output_contents``
(read with numpy) or the typed ``contents`` fields; BYTES elements become strings. These run in
the logger's sender thread (the request path hands over the protobuf messages, not JSON).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from predictor.signature import V2_DTYPES

__all__ = ["CONTENTS", "request_json", "response_json"]

CONTENTS = {
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
    "BYTES": "bytes_contents",
}
"""V2 datatype -> the ``InferTensorContents`` field that carries it."""

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _strings(items: Any) -> list[str]:
    return [bytes(b).decode("utf-8", "replace") for b in items]


def _raw_bytes_elements(raw: bytes) -> list[str]:
    """V2 raw BYTES: each element is a 4-byte little-endian length, then its bytes."""
    out: list[str] = []
    at = 0
    while at + 4 <= len(raw):
        n = int.from_bytes(raw[at : at + 4], "little")
        out.append(raw[at + 4 : at + 4 + n].decode("utf-8", "replace"))
        at += 4 + n
    return out


def _data(datatype: str, raw: bytes | None, contents: Any) -> Any:
    if raw is not None:
        if datatype == "BYTES":
            return _raw_bytes_elements(raw)
        dtype = V2_DTYPES.get(datatype)
        if dtype is None or len(raw) % dtype.itemsize:
            return []  # not decodable as its datatype (the request was refused for it)
        return np.frombuffer(raw, dtype=dtype)
    field = CONTENTS.get(datatype)
    if field is None:
        return []
    values = getattr(contents, field)
    return _strings(values) if datatype == "BYTES" else list(values)


def _parameters(params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, param in params.items():
        which = param.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(param, which)
    return out


def _tensors(tensors: Any, raw: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "shape": list(t.shape),
            "datatype": t.datatype,
            "data": _data(t.datatype, raw[i] if i < len(raw) else None, t.contents),
        }
        for i, t in enumerate(tensors)
    ]


def request_json(request: pb.ModelInferRequest) -> bytes:
    doc: dict[str, Any] = {"id": request.id, "inputs": _tensors(request.inputs, request.raw_input_contents)}
    params = _parameters(request.parameters)
    if params:
        doc["parameters"] = params
    return orjson.dumps(doc, option=_OPTIONS)


def response_json(response: pb.ModelInferResponse) -> bytes:
    doc = {
        "id": response.id,
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": _tensors(response.outputs, response.raw_output_contents),
    }
    return orjson.dumps(doc, option=_OPTIONS)
