"""Prometheus metrics of the explainer (``protocol``: ``rest_v1`` or ``rest_v2``; ``code``: HTTP status)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "explainer_requests",
    "Explain requests by model, protocol (rest_v1, rest_v2) and HTTP status code.",
    ["model_name", "protocol", "code"],
)
REQUEST_SECONDS = Histogram(
    "explainer_request_duration_seconds",
    "Time to serve one explain request (all its records).",
    ["model_name", "protocol"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
DEADLINE_EXPIRED = Counter(
    "explainer_deadline_expired",
    "Predictor calls not made because the caller's deadline (x-envoy-expected-rq-timeout-ms, "
    "grpc-timeout) had passed; the request is answered 504.",
    ["model_name"],
)
PREDICTOR_ROWS = Histogram(
    "explainer_predictor_rows",
    "Rows per predictor request (perturbation samples times background size, in chunks).",
    ["model_name"],
    buckets=(1, 16, 64, 256, 1024, 4096, 16384, 65536),
)

HTTP_REFUSED = Counter(
    "explainer_http_refused",
    "HTTP requests refused before reaching a handler, by reason (headers, body_size, body_timeout, "
    "no_route, management, method, overloaded).",
    ["reason"],
)
