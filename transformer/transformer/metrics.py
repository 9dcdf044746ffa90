"""Prometheus metrics of the transformer (names fixed in docs/contracts.md).

``protocol`` is how the caller reached the transformer: ``rest_v1``, ``rest_v2`` or ``grpc_v2``;
``code`` is the HTTP status for REST (``"200"``, ``"400"``, ``"503"``) and the gRPC status name
for gRPC (``"OK"``, ``"INVALID_ARGUMENT"``). Buckets are fixed so histograms aggregate across
replicas. Label children are looked up once and cached (:class:`RequestMetrics`).
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import Counter, Histogram

__all__ = [
    "DEADLINE_EXPIRED",
    "PREDICTOR_SECONDS",
    "REQUESTS",
    "REQUEST_METRICS",
    "REQUEST_SECONDS",
    "RequestMetrics",
]

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

REQUESTS = Counter(
    "transformer_requests",
    "Requests by model, protocol (rest_v1, rest_v2, grpc_v2) and status code "
    "(HTTP status for REST, gRPC status name for gRPC).",
    ["model_name", "protocol", "code"],
)
REQUEST_SECONDS = Histogram(
    "transformer_request_duration_seconds",
    "Time to serve one request: decode, validate, vectorise, call the predictor, post-process.",
    ["model_name", "protocol"],
    buckets=LATENCY_BUCKETS,
)
DEADLINE_EXPIRED = Counter(
    "transformer_deadline_expired",
    "Requests answered 504 / DEADLINE_EXCEEDED without calling the predictor: the caller's deadline "
    "(x-envoy-expected-rq-timeout-ms, grpc-timeout) had passed.",
    ["model_name"],
)
PREDICTOR_SECONDS = Histogram(
    "transformer_predictor_duration_seconds",
    "Time of the predictor call alone, by predictor protocol (grpc-v2, v2, v1).",
    ["model_name", "predictor_protocol"],
    buckets=LATENCY_BUCKETS,
)


class RequestMetrics:
    """``transformer_requests_total`` and ``..._duration_seconds`` with cached label children."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], Any] = {}
        self._seconds: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def done(self, model: str, protocol: str, code: str, seconds: float) -> None:
        count = self._counts.get((model, protocol, code))
        histogram = self._seconds.get((model, protocol))
        if count is None or histogram is None:
            with self._lock:
                count = self._counts.setdefault(
                    (model, protocol, code), REQUESTS.labels(model, protocol, code)
                )
                histogram = self._seconds.setdefault(
                    (model, protocol), REQUEST_SECONDS.labels(model, protocol)
                )
        count.inc()
        histogram.observe(seconds)


REQUEST_METRICS = RequestMetrics()

HTTP_REFUSED = Counter(
    "transformer_http_refused",
    "HTTP requests refused before reaching a handler, by reason (headers, body_size, body_timeout, "
    "no_route, management, method, overloaded).",
    ["reason"],
)
