"""Prometheus metrics (all ``drift_*``), on one registry per app.

Labels: ``inferenceservice``, ``inferenceservice_namespace`` and ``inferenceservice_component`` (the event's
``inferenceservicename``, ``namespace`` and ``component`` extensions) identify a stream; they are
prefixed so as not to clash with the target labels a scrape adds (``namespace`` is the
detector's own namespace, and the chart sets ``component="drift-detector"``). ``kind`` is
``features`` or ``prediction``; ``feature`` is a feature name from the spec (or ``prediction``
for the score).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from drift_detector.cloudevent import STREAM_LABELS
from drift_detector.errors import IGNORED, REASONS

__all__ = ["Metrics"]

STREAM = STREAM_LABELS


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_received = Counter(
            "drift_events_received_total",
            "Inference events taken in (decoded, neither ignored nor rejected), by stream and type.",
            [*STREAM, "type"],
            registry=r,
        )
        self.events_rejected = Counter(
            "drift_events_rejected_total",
            "Events refused at the door (4xx) or whose body could not be used, by reason.",
            ["reason"],
            registry=r,
        )
        self.events_ignored = Counter(
            "drift_events_ignored_total",
            "Events that are not inference traffic (empty GET bodies, readiness or metadata answers, "
            "explainer calls), by reason.",
            ["reason"],
            registry=r,
        )
        self.events_unanswered = Counter(
            "drift_events_unanswered_total",
            "Request events forgotten without a 200 response event (DRIFT_JOIN_TIMEOUT_SECONDS): "
            "their rows never entered a window.",
            list(STREAM),
            registry=r,
        )
        self.rows_skipped = Counter(
            "drift_rows_skipped_total",
            "Rows left out of windows, by stream, kind and reason: not_finite (NaN or infinite "
            "values), model_version (prediction rows of a model other than the reference's).",
            [*STREAM, "kind", "reason"],
            registry=r,
        )
        self.events_dropped = Counter(
            "drift_events_dropped_total",
            "Events refused with 503 because the queue was full (a batching logger may retry them).",
            list(STREAM),
            registry=r,
        )
        self.events_joined = Counter(
            "drift_events_joined_total",
            "Requests whose 200 response event (same ce-id) arrived: their rows entered the windows.",
            list(STREAM),
            registry=r,
        )
        self.rows_received = Counter(
            "drift_rows_received_total",
            "Rows (instances) taken into windows, by stream and kind.",
            [*STREAM, "kind"],
            registry=r,
        )
        self.windows_evaluated = Counter(
            "drift_windows_evaluated_total",
            "Windows compared with the reference.",
            [*STREAM, "kind"],
            registry=r,
        )
        self.windows_drifted = Counter(
            "drift_windows_drifted_total",
            "Windows in which drift was detected.",
            [*STREAM, "kind"],
            registry=r,
        )
        self.drift_detected = Gauge(
            "drift_detected",
            "1 when the latest window of the stream drifted, else 0.",
            [*STREAM, "kind"],
            registry=r,
        )
        self.threshold = Gauge(
            "drift_threshold",
            "p-value threshold of the latest window after the multiple-test correction.",
            [*STREAM, "kind"],
            registry=r,
        )
        self.p_value = Gauge(
            "drift_p_value",
            "p-value of the latest window's test, per feature (feature='prediction' for scores).",
            [*STREAM, "feature"],
            registry=r,
        )
        self.distance = Gauge(
            "drift_distance",
            "Test statistic of the latest window (KS statistic or chi-squared), per feature.",
            [*STREAM, "feature"],
            registry=r,
        )
        self.feature_drifted = Gauge(
            "drift_feature_drifted",
            "1 when the feature's p-value is below the corrected threshold in the latest window.",
            [*STREAM, "feature"],
            registry=r,
        )
        self.last_event = Gauge(
            "drift_last_event_timestamp_seconds",
            "Unix time of the stream's latest accepted event.",
            list(STREAM),
            registry=r,
        )
        self.queue_depth = Gauge("drift_queue_depth", "Raw events waiting to be decoded.", registry=r)
        self.queue_capacity = Gauge("drift_queue_capacity", "Size of the detection queue.", registry=r)
        self.detection_seconds = Histogram(
            "drift_detection_seconds",
            "Time to test one window.",
            ["kind"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.detection_errors = Counter(
            "drift_detection_errors_total", "Windows whose test raised an error.", ["kind"], registry=r
        )
        self.notifications = Counter(
            "drift_notifications_total",
            "Drift notifications posted to the sink, by outcome (sent or failed).",
            ["outcome"],
            registry=r,
        )
        self.ready = Gauge("drift_ready", "1 once the bundle is loaded and the backend fitted.", registry=r)
        self._streamed = [
            m
            for m in vars(self).values()
            if isinstance(m, Counter | Gauge) and tuple(m._labelnames[: len(STREAM)]) == STREAM
        ]
        for reason in REASONS:
            self.events_rejected.labels(reason=reason)
        for reason in IGNORED:
            self.events_ignored.labels(reason=reason)
        for outcome in ("sent", "failed"):
            self.notifications.labels(outcome=outcome)

    def forget_stream(self, labels: dict[str, str]) -> None:
        """Remove every series of one stream (an expired stream's slot is reused)."""
        values = tuple(labels[name] for name in STREAM)
        for metric in self._streamed:
            for key in list(metric._metrics):
                if key[: len(STREAM)] == values:
                    metric.remove(*key)
