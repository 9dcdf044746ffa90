"""Prometheus metrics of the feedback store and the live quality, on the detector's registry.

Quality gauges carry the detector's stream labels (``inferenceservice``, ``inferenceservice_namespace``,
``inferenceservice_component``): stable and canary are different InferenceServices. They describe the
labelled predictions made in the last ``DRIFT_QUALITY_WINDOW_SECONDS`` (at most the newest
``DRIFT_QUALITY_WINDOW_SIZE``); a metric that is undefined on the window (ROC AUC with one class,
precision with no positive prediction) is NaN, which no alert comparison matches.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from drift_detector.cloudevent import STREAM_LABELS

__all__ = ["OUTCOMES", "QUALITY", "FeedbackMetrics"]

STREAM = STREAM_LABELS
QUALITY = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier_score", "log_loss")
"""The quality metrics, each a gauge ``quality_<name>``."""
OUTCOMES = ("accepted", "duplicate", "unknown_id", "unknown_label", "bad_row", "wrong_model", "malformed")
"""What became of a feedback pair (``feedback_pairs_total{outcome}``)."""


class FeedbackMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.recorded = Counter(
            "feedback_predictions_recorded_total",
            "Predictions (rows) written to the feedback store.",
            registry=r,
        )
        self.dropped = Counter(
            "feedback_predictions_dropped_total",
            "Predictions (rows) not recorded: backlog full, store error, rows and scores apart, no score.",
            ["reason"],
            registry=r,
        )
        for reason in ("backlog", "store_error", "row_mismatch", "no_score"):
            self.dropped.labels(reason=reason)
        self.pending = Gauge(
            "feedback_predictions_pending", "Predictions (rows) paired and waiting to be written.", registry=r
        )
        self.pairs = Counter(
            "feedback_pairs_total", "Feedback pairs received, by outcome.", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self.pairs.labels(outcome=outcome)
        self.quality = {
            name: Gauge(
                f"quality_{name}",
                f"{name.replace('_', ' ')} of the labelled predictions in the quality window.",
                STREAM,
                registry=r,
            )
            for name in QUALITY
        }
        self.labelled = Gauge(
            "quality_labelled_predictions", "Labelled predictions in the quality window.", STREAM, registry=r
        )
        self.predictions = Gauge(
            "quality_predictions",
            "Predictions (labelled or not) made in the quality window.",
            STREAM,
            registry=r,
        )
        self.coverage = Gauge(
            "quality_label_coverage",
            "Share of the window's predictions that have a label.",
            STREAM,
            registry=r,
        )
        self.delay = Gauge(
            "quality_label_delay_seconds",
            "Median time from prediction to label over the window's labelled predictions.",
            STREAM,
            registry=r,
        )
        self.reference = Gauge(
            "quality_model_card",
            "The served bundle's held-out metric from model_card.json (what live quality is compared with).",
            ["metric"],
            registry=r,
        )
        self.evaluated = Gauge(
            "quality_last_evaluation_timestamp_seconds",
            "When the quality window was last computed.",
            registry=r,
        )
        self.errors = Counter(
            "quality_evaluation_errors_total",
            "Quality computations that failed (store unreachable).",
            registry=r,
        )
