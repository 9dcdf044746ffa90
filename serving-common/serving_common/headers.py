"""Which request headers travel on to the predictor, and the request id every hop shares."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

__all__ = ["FORWARDED", "forwarded", "request_id"]

FORWARDED = frozenset({"x-request-id", "traceparent", "tracestate", "authorization", "b3"})
"""Forwarded as they are; so is every ``x-b3-*`` header (Zipkin B3 multi-header propagation)."""


def forwarded(headers: Mapping[str, str] | None, request_id: str | None = None) -> dict[str, str]:
    """The headers to send to the predictor (lower-case names), with ``x-request-id`` set to
    ``request_id`` when one is given."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = name.lower()
        if key in FORWARDED or key.startswith("x-b3-"):
            out[key] = value
    if request_id is not None:
        out["x-request-id"] = request_id
    return out


def request_id(headers: Mapping[str, str] | None, v2_id: str | None = None) -> str:
    """The caller's ``x-request-id``, else the V2 request's ``id``, else a new UUID."""
    for name, value in (headers or {}).items():
        if name.lower() == "x-request-id" and value:
            return value
    return v2_id or str(uuid.uuid4())
