"""The predictor's HTTP front door (``serving_common.gate``) and its management port.

:func:`gate` puts :class:`serving_common.gate.Gate` in front of the fast path: routes, limits,
shedding and drain; refusals counted in ``predictor_http_refused_total{reason}``. Model-repository
management is never served on the inference ports; with ``PREDICTOR_MANAGEMENT_PORT`` set,
:class:`ManagementApp` serves KServe's load/unload routes there (REST only).
"""

from __future__ import annotations

from prometheus_client import Counter
from serving_common.drain import Drain
from serving_common.gate import ASGIApp, Gate, GatePolicy, Receive, Scope, Send, answer
from serving_common.limits import LimitExceeded, Limits, check_headers

from predictor.settings import PredictorSettings

__all__ = ["ManagementApp", "gate"]

REFUSED = Counter(
    "predictor_http_refused",
    "HTTP requests refused before reaching a handler, by reason (headers, body_size, no_route, "
    "management, method, overloaded).",
    ["reason"],
)


def gate(app: ASGIApp, settings: PredictorSettings, drain: Drain) -> Gate:
    policy = GatePolicy(
        component="predictor",
        serves="infer",
        prefix="PREDICTOR_",
        limits=settings.limits("PREDICTOR_"),
        max_inflight=settings.max_inflight,
        retry_after_seconds=settings.retry_after_seconds,
    )
    return Gate(app, policy, drain, lambda reason: REFUSED.labels(reason).inc())


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
