"""Settings: flags ``--model_dir`` and ``--http_port``, everything else from ``DRIFT_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """The drift detector's configuration (env prefix ``DRIFT_``)."""

    model_config = SettingsConfigDict(env_prefix="DRIFT_", extra="forbid", frozen=True)

    model_dir: Path = Path("/mnt/models")
    """Model bundle: ``feature_spec.json``, ``reference.npy`` and (optional) ``reference_scores.npy``."""
    http_port: int = Field(8080, ge=0, le=65535)
    """HTTP port for events, ``/status``, ``/metrics``, ``/live`` and ``/ready``."""
    host: str = "0.0.0.0"
    """Address to bind."""

    backend: Literal["alibi", "scipy"] = "alibi"
    """``alibi``: Alibi Detect's TabularDrift (Business Source License 1.1); ``scipy``: scipy.stats (BSD)."""
    p_val: float = Field(0.05, gt=0.0, lt=1.0)
    """Significance level of a window (before correction for the number of features)."""
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    """Multiple-test correction over features: Bonferroni or Benjamini-Hochberg false discovery rate."""
    window_size: int = Field(200, ge=10, le=100_000)
    """Rows (instances, not events: a batch of k rows counts k) compared with the reference at once."""
    window_mode: Literal["tumbling", "sliding"] = "tumbling"
    """``tumbling``: disjoint windows; ``sliding``: the last ``window_size`` rows, every ``window_step``."""
    window_step: int = Field(50, ge=1, le=100_000)
    """New rows between two evaluations of a sliding window (ignored for tumbling windows)."""
    prediction_drift: bool = True
    """Also test the predicted positive-class scores of response events against ``reference_scores.npy``."""

    queue_size: int = Field(10_000, ge=1, le=10_000_000)
    """Raw events waiting to be decoded; beyond it a POST is answered 503 (``Retry-After``) and its
    events are counted in ``drift_events_dropped_total``."""
    retry_after_seconds: int = Field(1, ge=1, le=60)
    """``Retry-After`` of a 503 answered because the queue is full (a batching logger retries)."""
    join_timeout_seconds: float = Field(60.0, gt=0.0, le=3600.0)
    """A request event whose 200 response event has not arrived after this long is forgotten
    (``drift_events_unanswered_total``): its rows never enter a window."""
    slice_seconds: float = Field(0.002, gt=0.0, le=1.0)
    """Longest stretch the decoding worker runs before letting the event loop accept again."""
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """Largest event body accepted (413 beyond)."""
    max_headers: int = Field(100, ge=8, le=10_000)
    """Most request headers accepted (431 beyond; a binary-mode event carries ~15)."""
    max_header_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    """Most bytes of all request headers together (431 beyond)."""
    body_timeout_seconds: float = Field(30.0, gt=0.0, le=3600.0)
    """An event body not complete after this long is answered 408 (half-sent requests)."""
    max_rows_per_event: int = Field(10_000, ge=1)
    """Largest batch accepted in one event."""
    inference_services: list[str] = Field(default_factory=list)
    """Allow-list of InferenceService names (JSON list in the variable); empty accepts any."""
    max_inference_services: int = Field(100, ge=1, le=10_000)
    """How many (namespace, InferenceService, component) streams are tracked at most."""
    stream_idle_seconds: float = Field(600.0, gt=0.0, le=7 * 86400.0)
    """A stream (namespace, InferenceService, component) without events this long gives up its slot
    (and its series) when a new stream needs one: junk names cannot lock real streams out."""
    drain_seconds: float = Field(0.0, ge=0.0, le=3600.0)
    """After SIGTERM, ``/ready`` answers 503 at once and events are still taken this long (the chart
    sets it with ``terminationGracePeriodSeconds``); then the server stops and the queue is decoded."""
    grace_seconds: float = Field(10.0, ge=0.0, le=600.0)
    """After the drain period, how long requests in flight may still take before the server stops
    (the chart sizes ``terminationGracePeriodSeconds`` and the sidecar's drain from the same value)."""
    pending_joins: int = Field(100_000, ge=1)
    """Unpaired event ids remembered to join request and response by ``ce-id``; beyond it the
    oldest request is forgotten early (counted as unanswered)."""

    sink_url: str | None = None
    """When set, a CloudEvent (``sink_mode=cloudevent``) or JSON webhook is posted here on drift."""
    sink_mode: Literal["cloudevent", "webhook"] = "cloudevent"
    """How the drift notification is posted."""
    sink_timeout: float = Field(2.0, gt=0.0, le=60.0)
    """Seconds before a notification post is abandoned (and counted as failed)."""

    feedback_db_url: str | None = None
    """SQLAlchemy URL of the feedback store (``sqlite:////var/lib/feedback/feedback.db`` on a volume,
    ``postgresql+psycopg://user@host/db`` for several replicas). Set: predictions are recorded and
    the feedback API and live quality are on; unset: neither."""
    feedback_retention_days: float = Field(30.0, gt=0.0, le=3650.0)
    """Predictions older than this are deleted (feedback for them is refused as unknown or expired)."""
    feedback_max_predictions: int = Field(5_000_000, ge=1)
    """Predictions (rows) kept at most; the oldest beyond are deleted (hourly, with retention)."""
    feedback_batch_rows: int = Field(1000, ge=1, le=100_000)
    """Predictions written to the store in one transaction (or every ``feedback_flush_seconds``)."""
    feedback_flush_seconds: float = Field(0.5, gt=0.0, le=60.0)
    """Longest time a paired prediction waits before it is written."""
    feedback_max_pending_rows: int = Field(200_000, ge=1)
    """Predictions waiting to be written at most; beyond, new ones are dropped and counted."""
    feedback_max_pairs: int = Field(10_000, ge=1, le=1_000_000)
    """Feedback pairs accepted in one POST (413 beyond)."""
    quality_window_seconds: float = Field(7 * 86_400.0, gt=0.0)
    """Live quality covers the labelled predictions made in this many seconds before now (7 days:
    labels arrive late; a window shorter than the label delay never sees them)."""
    quality_window_size: int = Field(10_000, ge=1, le=10_000_000)
    """... at most the newest this many labelled predictions per stream."""
    quality_interval_seconds: float = Field(15.0, gt=0.0, le=3600.0)
    """Seconds between two computations of the live quality."""

    log_format: Literal["json", "text"] = "json"
    """Log lines: one JSON object per line (for the cluster's log pipeline) or plain text (local use)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged (libraries' own chatter stays at WARNING)."""

    @property
    def effective_step(self) -> int:
        """Rows between evaluations: the window size for tumbling windows."""
        return self.window_size if self.window_mode == "tumbling" else self.window_step

    @model_validator(mode="after")
    def _step_fits(self) -> Settings:
        if self.window_mode == "sliding" and self.window_step > self.window_size:
            raise ValueError(
                "window_step must not exceed window_size "
                f"(DRIFT_WINDOW_STEP={self.window_step} > DRIFT_WINDOW_SIZE={self.window_size})"
            )
        if self.sink_url is not None and not self.sink_url.startswith(("http://", "https://")):
            raise ValueError(f"DRIFT_SINK_URL={self.sink_url!r}: sink_url must be an http:// or https:// URL")
        return self
