"""The predictor's HTTP front door: which routes exist, request limits, shedding and drain.

Every HTTP request passes here first (an ASGI app around :class:`predictor.rest.FastPath`, which
wraps KServe's FastAPI app), cheaply and before any body is read:

* headers over ``PREDICTOR_MAX_HEADERS`` / ``PREDICTOR_MAX_HEADER_BYTES``: 431; a ``Content-Length``
  over ``PREDICTOR_MAX_BODY_BYTES``: 413 (streamed bodies are stopped at the limit by the fast path);
* only the routes of :data:`ROUTES` are served: inference, metadata, health, readiness, ``/metrics``.
  Model-repository management (``/v2/repository/...``) is 404 here, always: when enabled it is served
  on its own port (``PREDICTOR_MANAGEMENT_PORT``, :class:`ManagementApp`); ``:explain`` is 404 (this is
  a predictor); a known path with the wrong verb is 405 with ``Allow``; anything else is 404;
* more than ``PREDICTOR_MAX_INFLIGHT`` inference requests at once: 503 with ``Retry-After``;
* while draining (:mod:`predictor.drain`), readiness answers 503 and inference goes on.

Refusals are counted in ``predictor_http_refused_total{reason}`` (bounded reasons).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import Counter
from serving_common.drain import Drain
from serving_common.limits import LimitExceeded, Limits, check_headers

__all__ = ["Guard", "ManagementApp", "classify"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REFUSED = Counter(
    "predictor_http_refused",
    "HTTP requests refused before reaching a handler, by reason (headers, body_size, no_route, "
    "management, method, overloaded).",
    ["reason"],
)

INFER, READY, READ, MANAGEMENT, EXPLAIN = "infer", "ready", "read", "management", "explain"


def classify(path: str) -> str | None:
    """The kind of route ``path`` is (:data:`INFER`, :data:`READY`, :data:`READ`, ...), else ``None``."""
    if path in ("/", "/metrics", "/v2", "/v2/health/live", "/v2/models", "/v1/models"):
        return READ
    if path == "/v2/health/ready":
        return READY
    if path.startswith("/v2/repository/"):
        return MANAGEMENT
    parts = path.split("/")
    if path.startswith("/v1/models/") and len(parts) == 4 and parts[3]:
        name = parts[3]
        if name.endswith(":predict") and len(name) > len(":predict"):
            return INFER
        if name.endswith(":explain"):
            return EXPLAIN
        return READY if ":" not in name else None
    if path.startswith("/v2/models/") and len(parts) >= 4 and parts[3]:
        rest = parts[4:]
        if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
            rest = rest[2:]
        if not rest:
            return READ
        if rest == ["infer"]:
            return INFER
        if rest == ["ready"]:
            return READY
        if rest == ["explain"]:
            return EXPLAIN
    return None


ALLOWED_METHODS = {INFER: "POST", READY: "GET", READ: "GET"}


async def answer(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps({"error": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """An ASGI app: refuses what must not reach ``app`` (see the module's docstring)."""

    def __init__(
        self, app: ASGIApp, limits: Limits, drain: Drain, max_inflight: int, retry_after: int
    ) -> None:
        self.app = app
        self.limits = limits
        self.drain = drain
        self.max_inflight = max_inflight
        self.retry_after = str(retry_after).encode()
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_headers(scope["headers"], self.limits)
        except LimitExceeded as e:
            REFUSED.labels("headers" if e.status == 431 else "body_size").inc()
            await answer(send, e.status, e.message, [(b"connection", b"close")])
            return
        kind = classify(scope["path"])
        method = scope["method"]
        if kind is None or kind in (EXPLAIN, MANAGEMENT):
            REFUSED.labels("management" if kind == MANAGEMENT else "no_route").inc()
            await answer(send, 404, _not_found(kind, scope["path"]))
            return
        allowed = ALLOWED_METHODS[kind]
        if method != allowed:
            REFUSED.labels("method").inc()
            message = f"{method} is not allowed on {scope['path']}; use {allowed}"
            await answer(send, 405, message, [(b"allow", allowed.encode())])
            return
        if kind == READY and self.drain.draining:
            await answer(send, 503, "shutting down: not ready", [(b"retry-after", self.retry_after)])
            return
        if kind != INFER:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            REFUSED.labels("overloaded").inc()
            message = (
                f"overloaded: {self.max_inflight} requests in flight (PREDICTOR_MAX_INFLIGHT); retry later"
            )
            await answer(send, 503, message, [(b"retry-after", self.retry_after)])
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


def _not_found(kind: str | None, path: str) -> str:
    if kind == MANAGEMENT:
        return "model repository management is not served on this port (see PREDICTOR_MANAGEMENT_PORT)"
    if kind == EXPLAIN:
        return "this is a predictor: explanations are served by the explainer"
    return f"no route {path!r}: this port serves V1/V2 inference, metadata, health and /metrics"


class ManagementApp:
    """The management port's ASGI app: ``POST /v2/repository/models/NAME/load|unload`` only, served by
    KServe's app; everything else 404. Only listening when ``PREDICTOR_MANAGEMENT_PORT`` is set."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # the inference port's server runs the app's lifespan
        try:
            check_headers(scope["headers"], self.limits)
        except LimitExceeded as e:
            await answer(send, e.status, e.message, [(b"connection", b"close")])
            return
        parts = scope["path"].split("/")
        if not (
            scope["path"].startswith("/v2/repository/models/")
            and len(parts) == 6
            and parts[4]
            and parts[5] in ("load", "unload")
        ):
            await answer(send, 404, "the management port serves POST /v2/repository/models/NAME/load|unload")
            return
        if scope["method"] != "POST":
            await answer(send, 405, f"{scope['method']} is not allowed; use POST", [(b"allow", b"POST")])
            return
        await self.app(scope, receive, send)
