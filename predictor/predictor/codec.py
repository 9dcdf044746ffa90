"""REST wire format <-> KServe's ``InferRequest`` / ``InferResponse``, without detours.

Handles JSON bodies and the binary tensor extension (``Inference-Header-Content-Length``:
the JSON header first, then each binary input's bytes in order, sized by
``parameters.binary_data_size``). Binary inputs become numpy *views* of the body; outputs
are written straight from numpy (``orjson`` serialises arrays natively), never through
Python lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse, RequestedOutput

from predictor.errors import invalid
from predictor.signature import V2_DTYPES

HEADER_LENGTH = "inference-header-content-length"
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def loads(raw: bytes | memoryview, what: str = "request body") -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise invalid(f"{what} is not valid JSON: {e}") from e


def decode_v2(body: bytes, header_length: str | None, model_name: str) -> tuple[InferRequest, bool]:
    """Parse a V2 infer request; returns it and whether the client asked for binary outputs."""
    if header_length is None:
        json_part: bytes | memoryview = body
        binary = memoryview(b"")
    else:
        try:
            n = int(header_length)
        except ValueError as e:
            raise invalid(f"header {HEADER_LENGTH} must be an integer, got {header_length!r}") from e
        if not 0 < n <= len(body):
            raise invalid(f"header {HEADER_LENGTH} is {n} but the body has {len(body)} bytes")
        view = memoryview(body)
        json_part, binary = view[:n], view[n:]
    doc = _object(loads(json_part), "the request body")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise invalid("'inputs' must be a non-empty list of tensors")
    offset = 0
    inputs: list[InferInput] = []
    for i, raw in enumerate(raw_inputs):
        item = _object(raw, f"inputs[{i}]")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"inputs[{i}].name must be a non-empty string")
        datatype = item.get("datatype")
        if not isinstance(datatype, str):
            raise invalid(f"input '{name}': 'datatype' must be a string such as \"FP32\"")
        shape = item.get("shape")
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise invalid(f"input '{name}': 'parameters' must be an object")
        size = params.get("binary_data_size")
        data: Any
        if size is not None:
            if "data" in item:
                raise invalid(f"input '{name}': give either 'data' or parameters.binary_data_size, not both")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise invalid(f"input '{name}': binary_data_size must be a non-negative integer")
            if offset + size > len(binary):
                raise invalid(
                    f"input '{name}': binary_data_size {size} runs past the end of the body "
                    f"({len(binary) - offset} binary bytes left)"
                )
            dtype = V2_DTYPES.get(datatype)
            if dtype is None:
                raise invalid(f"input '{name}': datatype {datatype!r} is not supported in binary form")
            if size % dtype.itemsize:
                raise invalid(
                    f"input '{name}': binary_data_size {size} is not a whole number of {datatype} values"
                )
            data = np.frombuffer(binary[offset : offset + size], dtype=dtype)
            offset += size
        elif "data" in item:
            data = item["data"]
        else:
            raise invalid(f"input '{name}': 'data' is missing (or parameters.binary_data_size)")
        inputs.append(InferInput(name=name, shape=shape, datatype=datatype, data=data))
    if offset != len(binary):
        raise invalid(
            f"the body carries {len(binary) - offset} bytes of binary data that no input's "
            "binary_data_size accounts for"
        )

    req_params = doc.get("parameters") or {}
    if not isinstance(req_params, dict):
        raise invalid("'parameters' must be an object")
    binary_all = bool(req_params.get("binary_data_output", False))
    requested: list[RequestedOutput] | None = None
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise invalid("'outputs' must be a list of {\"name\": ...} objects")
        requested = []
        for j, raw in enumerate(raw_outputs):
            out = _object(raw, f"outputs[{j}]")
            if not isinstance(out.get("name"), str):
                raise invalid(f"outputs[{j}].name must be a string")
            out_params = out.get("parameters") or {}
            if not isinstance(out_params, dict):
                raise invalid(f"outputs[{j}].parameters must be an object")
            requested.append(RequestedOutput(name=out["name"], parameters=out_params))
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise invalid("'id' must be a string")
    request = InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=request_id,
        parameters=req_params,
        request_outputs=requested or None,
    )
    return request, binary_all


def binary_outputs(request: InferRequest, binary_all: bool) -> dict[str, bool]:
    """Which outputs go in binary form: per output ``binary_data``, else the request default."""
    if not request.request_outputs:
        return {}
    return {
        o.name: bool((o.parameters or {}).get("binary_data", binary_all)) for o in request.request_outputs
    }


def encode_v2(response: InferResponse, binary: dict[str, bool], binary_all: bool) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    outputs: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for out in response.outputs:
        array = out.data
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        item: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": list(array.shape)}
        if binary.get(out.name, binary_all):
            data = np.ascontiguousarray(array).tobytes()
            item["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            item["data"] = np.ascontiguousarray(array).reshape(-1)
        outputs.append(item)
    doc: dict[str, Any] = {"id": response.id, "model_name": response.model_name, "outputs": outputs}
    if response.model_version:
        doc["model_version"] = response.model_version
    header = orjson.dumps(doc, option=_DUMP_OPTIONS)
    if not raw:
        return header, None
    return b"".join([header, *raw]), len(header)


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, option=_DUMP_OPTIONS)
