"""Prometheus metrics of the transformer (names fixed in docs/contracts.md).

``protocol`` is how the caller reached the transformer: ``rest_v1``, ``rest_v2`` or ``grpc_v2``;
``code`` is the HTTP status for REST (``"200"``, ``"400"``, ``"503"``) and the gRPC status name
for gRPC (``"OK"``, ``"INVALID_ARGUMENT"``). Buckets are fixed so histograms aggregate across replicas.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
    ["model", "protocol", "code"],
)
REQUEST_SECONDS = Histogram(
    "transformer_request_duration_seconds",
    "Time to serve one request: decode, validate, vectorise, call the predictor, post-process.",
    ["model", "protocol"],
    buckets=LATENCY_BUCKETS,
)
PREDICTOR_SECONDS = Histogram(
    "transformer_predictor_duration_seconds",
    "Time of the predictor call alone, by predictor protocol (grpc-v2, v2, v1).",
    ["model", "predictor_protocol"],
    buckets=LATENCY_BUCKETS,
)
