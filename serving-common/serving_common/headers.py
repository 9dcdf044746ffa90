"""Which request headers travel on to the predictor, and the request id every hop shares."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping

__all__ = [
    "CALLER_EXPLAINER",
    "CALLER_HEADER",
    "FORWARDED",
    "forwarded",
    "header_safe",
    "new_id",
    "request_id",
]

CALLER_HEADER = "x-model-serving-caller"
"""Who calls the predictor (contract C1): the explainer sends :data:`CALLER_EXPLAINER` on every
predictor call (REST header, gRPC metadata); the predictor labels its metrics ``caller`` with it
(``explainer``, any other value or none is ``client``) and the drift detector ignores such events."""
CALLER_EXPLAINER = "explainer"

FORWARDED = frozenset({"x-request-id", "traceparent", "tracestate", "authorization", "b3"})
"""Forwarded as they are; so is every ``x-b3-*`` header (Zipkin B3 multi-header propagation)."""


_PREFIX = uuid.uuid4().hex[:20]
_COUNTER = itertools.count(1)


def new_id() -> str:
    """A request id for a request that carried none: a per-process random prefix (a uuid4's) and
    a counter, so unique across replicas and restarts and a few hundred ns to make (``uuid4()``
    reads the OS random source on every call)."""
    return f"{_PREFIX}-{next(_COUNTER):012x}"


def forwarded(headers: Mapping[str, str] | None, request_id: str | None = None) -> dict[str, str]:
    """The headers to send to the predictor (lower-case names), with ``x-request-id`` set to
    ``request_id`` when one is given. Values that are not printable ASCII are left out: gRPC
    metadata cannot carry them (and no valid trace or token header has them)."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = name.lower()
        if (key in FORWARDED or key.startswith("x-b3-")) and _printable(value):
            out[key] = value
    if request_id is not None and _printable(request_id):
        out["x-request-id"] = request_id
    return out


def request_id(headers: Mapping[str, str] | None, v2_id: str | None = None) -> str:
    """The caller's ``x-request-id``, else the V2 request's ``id``, else a :func:`new_id`."""
    for name, value in (headers or {}).items():
        if name.lower() == "x-request-id" and value and _printable(value):
            return value
    return header_safe(v2_id) or new_id()


MAX_ID_CHARS = 256


def header_safe(value: str | None) -> str | None:
    """``value`` if it can be a header (or gRPC metadata) value as it is: printable ASCII, at most
    :data:`MAX_ID_CHARS` characters; else None. A request's own ``id`` is any string a client sent:
    echoed into a header unchecked, a control character breaks the answer (gRPC: INTERNAL)."""
    if value and len(value) <= MAX_ID_CHARS and _printable(value):
        return value
    return None


def _printable(value: str) -> bool:
    return value.isascii() and value.isprintable()
