"""An event's raw body as a JSON document: the bodies KServe's agent really forwards.

* gzip: the agent copies the request's bytes but not its ``Content-Encoding``, so a compressed
  body is recognised by its magic bytes ``1f 8b`` (decompressed up to ``DRIFT_MAX_BODY_BYTES``).
* JSON with ``NaN`` / ``Infinity`` / ``-Infinity`` literals (Python's and the transformer's JSON
  writers emit them): orjson first, the standard library's parser when orjson refuses.
* the V2 binary tensor extension (:mod:`drift_detector.binary`), with or without
  ``Inference-Header-Content-Length``.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson

from drift_detector import binary
from drift_detector.errors import BadEvent, PayloadTooLarge

__all__ = ["decode"]

GZIP_MAGIC = b"\x1f\x8b"


def decode(body: bytes, max_bytes: int, header_length: int | None = None) -> Any:
    """The JSON document in ``body``; raises :class:`BadEvent` (``not_json``) naming the problem."""
    if body[:2] == GZIP_MAGIC:
        body = _gunzip(body, max_bytes)
    if not body.strip():
        raise BadEvent("body is empty; expected a JSON inference request or response", reason="not_json")
    if header_length is not None and 0 < header_length < len(body):
        document = binary.decode(body, header_length)
        if document is not None:
            return document
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        error = e
    try:  # NaN / Infinity literals
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        pass
    document = binary.decode(body)  # a V2 body with the binary tensor extension
    if document is not None:
        return document
    raise BadEvent(f"body is not JSON: {error}", reason="not_json") from error


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, max_bytes)
    except zlib.error as e:
        message = f"body starts like gzip (1f 8b) but does not decompress: {e}"
        raise BadEvent(message, reason="not_json") from e
    if inflater.unconsumed_tail:
        raise PayloadTooLarge(f"gzip body inflates beyond DRIFT_MAX_BODY_BYTES={max_bytes}")
    return out
