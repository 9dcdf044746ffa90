"""The HTTP front door of the KServe-based components: routes, limits, shedding and drain (pure).

Every HTTP request to the predictor, the transformer or the explainer passes a :class:`Gate`
first (an ASGI app around the component's own), cheaply and before any body is read:

* headers over ``<PREFIX>MAX_HEADERS`` / ``<PREFIX>MAX_HEADER_BYTES``: 431; a ``Content-Length`` over
  ``<PREFIX>MAX_BODY_BYTES``: 413 (streamed bodies are stopped at the limit by :func:`limits.read_body`);
* only the routes :func:`classify` knows are served: inference (or explanations, on the explainer),
  metadata, health, readiness, ``/metrics``. Model-repository management (``/v2/repository/...``)
  is 404, always (the predictor serves it, when enabled, on a port of its own); the other
  component's verb (``:explain`` on a predictor, ``:predict`` on the explainer) is 404; a known
  path with the wrong verb is 405 with ``Allow``; anything else is 404;
* more than ``<PREFIX>MAX_INFLIGHT`` inference requests at once: 503 with ``Retry-After``;
* an inference body is read here, bounded (413 past ``<PREFIX>MAX_BODY_BYTES``, 408 when not complete
  within ``<PREFIX>BODY_TIMEOUT_SECONDS``), and handed to the app as it came;
* while draining (:mod:`serving_common.drain`), readiness answers 503 and inference goes on.

Refusals are reported to ``on_refused(reason)`` (bounded reasons: :data:`REASONS`) for the
component's ``<component>_http_refused_total{reason}``. :class:`GateSettings` holds the settings
every component shares (each component's settings class inherits it, with its env prefix).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings

from serving_common.drain import Drain
from serving_common.limits import LimitExceeded, Limits, check_headers, read_body

__all__ = ["REASONS", "Gate", "GatePolicy", "GateSettings", "answer", "classify"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INFER, EXPLAIN, READY, READ, MANAGEMENT = "infer", "explain", "ready", "read", "management"
REASONS = ("headers", "body_size", "body_timeout", "no_route", "management", "method", "overloaded")


class GateSettings(BaseSettings):
    """Limits, shedding and drain: inherited by each component's settings (``PREDICTOR_*``, ...)."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """Largest request body (REST) / message (gRPC) accepted; 413 / RESOURCE_EXHAUSTED beyond,
    refused before the body is read whole. Size it with the pod's memory limit (chart README)."""
    max_headers: int = Field(default=100, ge=8, le=10_000)
    """Most request headers accepted; 431 beyond (Envoy's default is also 100)."""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    """Most bytes of all request headers together; 431 beyond."""
    body_timeout_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    """A request body not complete after this long is answered 408 (half-sent requests)."""
    max_inflight: int = Field(default=64, ge=1, le=100_000)
    """Inference requests served at once (REST); beyond, 503 with ``Retry-After`` (shedding)."""
    retry_after_seconds: int = Field(default=1, ge=1, le=600)
    """``Retry-After`` of a shed (503) request."""
    drain_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    """After SIGTERM: readiness answers 503 at once while requests (in flight and new) are served
    this long, so that endpoints are removed first; then the servers stop gracefully. 0 (default,
    for a process started by hand): stop at once; the chart sets it (``hardening.drainSeconds``)."""
    grace_seconds: float = Field(default=10.0, ge=0.0, le=3600.0)
    """After the drain period, how long requests still in flight may take before they are cut."""

    def limits(self, prefix: str) -> Limits:
        return Limits(
            prefix=prefix,
            max_body_bytes=self.max_body_bytes,
            max_headers=self.max_headers,
            max_header_bytes=self.max_header_bytes,
            body_timeout_seconds=self.body_timeout_seconds,
        )


@dataclass(frozen=True)
class GatePolicy:
    """What one component's gate serves: ``serves`` is its POST verb, ``prefix`` its env prefix."""

    component: Literal["predictor", "transformer", "explainer"]
    serves: Literal["infer", "explain"]
    prefix: str
    limits: Limits
    max_inflight: int
    retry_after_seconds: int
    cancel_on_disconnect: bool = False
    """Cancel the app's work when the client disconnects before the answer (long requests: explain)."""


def classify(path: str) -> str | None:
    """The kind of route ``path`` is (:data:`INFER`, :data:`EXPLAIN`, :data:`READY`, ...), else ``None``."""
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
        if name.endswith(":explain") and len(name) > len(":explain"):
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


async def answer(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """An ASGI app: refuses what must not reach ``app`` (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        policy: GatePolicy,
        drain: Drain,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.drain = drain
        self.on_refused = on_refused or (lambda reason: None)
        self.retry_after = str(policy.retry_after_seconds).encode()
        self.allowed = {policy.serves: "POST", READY: "GET", READ: "GET"}
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_headers(scope["headers"], self.policy.limits)
        except LimitExceeded as e:
            self.on_refused("headers" if e.status == 431 else "body_size")
            await answer(send, e.status, e.message, [(b"connection", b"close")])
            return
        path, method = scope["path"], scope["method"]
        kind = classify(path)
        allowed = self.allowed.get(kind) if kind is not None else None
        if allowed is None:
            self.on_refused("management" if kind == MANAGEMENT else "no_route")
            await answer(send, 404, self._not_found(kind, path))
            return
        if method != allowed:
            self.on_refused("method")
            await answer(
                send, 405, f"{method} is not allowed on {path}; use {allowed}", [(b"allow", allowed.encode())]
            )
            return
        if kind == READY and self.drain.draining:
            await answer(send, 503, "shutting down: not ready", [(b"retry-after", self.retry_after)])
            return
        if kind != self.policy.serves:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.policy.max_inflight:
            self.on_refused("overloaded")
            message = (
                f"overloaded: {self.policy.max_inflight} requests in flight "
                f"({self.policy.prefix}MAX_INFLIGHT); retry later"
            )
            await answer(send, 503, message, [(b"retry-after", self.retry_after)])
            return
        self.inflight += 1
        try:
            try:
                body = await read_body(receive, self.policy.limits)
            except LimitExceeded as e:
                self.on_refused("body_size" if e.status == 413 else "body_timeout")
                await answer(send, e.status, e.message, [(b"connection", b"close")])
                return
            if body is None:  # the client went away: no work for it
                return
            if self.policy.cancel_on_disconnect:
                await _cancel_on_disconnect(self.app(scope, _replay(body, receive), send), receive)
            else:
                await self.app(scope, _replay(body, receive), send)
        finally:
            self.inflight -= 1

    def _not_found(self, kind: str | None, path: str) -> str:
        component = self.policy.component
        if kind == MANAGEMENT:
            where = " (see PREDICTOR_MANAGEMENT_PORT)" if component == "predictor" else ""
            return f"model repository management is not served on this port{where}"
        if kind == EXPLAIN:
            return f"this is the {component}: explanations are served by the explainer"
        if kind == INFER:
            return "this is the explainer: predictions are served by the transformer and the predictor"
        return f"no route {path!r}: this port serves {self.policy.serves}, metadata, health and /metrics"


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app: the body read already, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _cancel_on_disconnect(work: Awaitable[None], receive: Receive) -> None:
    """Run ``work``; if the client disconnects first, cancel it (its slot and CPU are freed). Only the
    watcher reads ``receive`` after the body, so the app must not wait for a disconnect itself."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(receive())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            message = watcher.result()
            if message.get("type") == "http.disconnect":
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        task.result()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
