"""Prometheus metrics of the predictor, on top of KServe's own ``request_*_seconds`` histograms.

Buckets are fixed so histograms aggregate across replicas::

    histogram_quantile(0.99, sum by (le) (rate(predictor_request_duration_seconds_bucket[5m])))
"""

from __future__ import annotations

import threading
from typing import Any

from kserve.metrics import PREDICT_HIST_TIME, get_labels
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
    "(HTTP status for REST, gRPC status name for gRPC) and caller (explainer, client).",
    ["model_name", "protocol", "code", "caller"],
)
REQUEST_SECONDS = Histogram(
    "predictor_request_duration_seconds",
    "Time to serve one inference request inside the server (decode, validate, infer, encode).",
    ["model_name", "protocol", "caller"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_SECONDS = Histogram(
    "predictor_inference_duration_seconds",
    "Time onnxruntime's session.run takes for one run (requests waiting together share a run).",
    ["model_name"],
    buckets=LATENCY_BUCKETS,
)
ROWS = Histogram(
    "predictor_rows_per_request",
    "Rows (first dimension of the input) per inference request.",
    ["model_name"],
    buckets=ROW_BUCKETS,
)
BATCH_REQUESTS = Histogram(
    "predictor_batch_requests",
    "Requests merged into one session.run (1 when requests do not overlap).",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


class RequestMetrics:
    """Counts and times one served request; metric children are looked up once per label set.

    Thread-safe: REST calls it on the event loop, gRPC on its worker threads. A successful
    request is also observed in KServe's own ``request_predict_seconds``.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()

    def done(self, model: str, protocol: str, code: str, ok: bool, seconds: float, caller: str) -> None:
        key = (model, protocol, code, caller)
        children = self._children.get(key)
        if children is None:
            with self._lock:
                children = self._children[key] = (
                    REQUESTS.labels(model, protocol, code, caller),
                    REQUEST_SECONDS.labels(model, protocol, caller),
                    PREDICT_HIST_TIME.labels(**get_labels(model)),
                )
        requests, request_seconds, kserve_predict = children
        requests.inc()
        request_seconds.observe(seconds)
        if ok:
            kserve_predict.observe(seconds)


REQUEST_METRICS = RequestMetrics()
