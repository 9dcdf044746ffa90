"""Prometheus metrics of the predictor, on top of KServe's own ``request_*_seconds`` histograms.

Buckets are fixed so histograms aggregate across replicas::

    histogram_quantile(0.99, sum by (le) (rate(predictor_request_duration_seconds_bucket[5m])))
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (
    0.0002,
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
)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)

REQUESTS = Counter(
    "predictor_requests",
    "Inference requests by model, protocol (rest_v1, rest_v2, grpc_v2) and status code "
    "(HTTP status for REST, gRPC status name for gRPC).",
    ["model", "protocol", "code"],
)
REQUEST_SECONDS = Histogram(
    "predictor_request_duration_seconds",
    "Time to serve one inference request inside the server (decode, validate, infer, encode).",
    ["model", "protocol"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_SECONDS = Histogram(
    "predictor_inference_duration_seconds",
    "Time onnxruntime's session.run takes for one run (requests waiting together share a run).",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
ROWS = Histogram(
    "predictor_rows_per_request",
    "Rows (first dimension of the input) per inference request.",
    ["model"],
    buckets=ROW_BUCKETS,
)
BATCH_REQUESTS = Histogram(
    "predictor_batch_requests",
    "Requests merged into one session.run (1 when requests do not overlap).",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
