"""The V2 binary tensor extension: a JSON header, then raw tensor bytes.

A logged V2 request or response may use it (tritonclient does by default). KServe's agent does
not forward the ``Inference-Header-Content-Length`` header, so unless the sender kept it the
header's end is found by parsing the JSON object at the start of the body; each tensor with
``parameters.binary_data_size`` then takes that many bytes, in order, and becomes a plain ``data`` list.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

__all__ = ["decode"]

DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def decode(body: bytes, header_length: int | None = None) -> dict[str, Any] | None:
    """The body as a plain V2 JSON document, or ``None`` if it is not a binary-extension body.

    ``header_length`` is the ``Inference-Header-Content-Length`` when known.
    """
    if not body.startswith(b"{"):
        return None
    try:
        if header_length is not None:
            header, end = json.loads(body[:header_length]), header_length
        else:
            header, end = json.JSONDecoder().raw_decode(body.decode("latin-1"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(header, dict) or end >= len(body):
        return None
    offset = end
    for key in ("inputs", "outputs"):
        tensors = header.get(key)
        if not isinstance(tensors, list):
            continue
        for tensor in tensors:
            if not isinstance(tensor, dict):
                return None
            size = (tensor.get("parameters") or {}).get("binary_data_size")
            if size is None:
                continue
            if not isinstance(size, int) or size < 0 or offset + size > len(body):
                return None
            tensor["data"] = _values(str(tensor.get("datatype", "")).upper(), body[offset : offset + size])
            offset += size
    return header if offset == len(body) else None


def _values(datatype: str, raw: bytes) -> list[Any]:
    if datatype == "BYTES":
        out: list[Any] = []
        i = 0
        while i + 4 <= len(raw):
            (n,) = struct.unpack_from("<I", raw, i)
            out.append(raw[i + 4 : i + 4 + n].decode("utf-8", errors="replace"))
            i += 4 + n
        return out
    dtype = DTYPES.get(datatype)
    if dtype is None:
        return []
    values: list[Any] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).tolist()
    return values
