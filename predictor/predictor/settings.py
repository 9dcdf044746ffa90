"""Predictor settings: everything that is not a KServe flag, read from ``PREDICTOR_*`` env vars."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from serving_common.gate import GateSettings
from serving_common.logger_config import LoggerSettings


class PredictorSettings(GateSettings):
    """Typed, bounded settings; ``os.environ`` is read nowhere else in the predictor. Limits,
    shedding and drain (``PREDICTOR_MAX_BODY_BYTES``, ``..._MAX_HEADERS``, ``..._DRAIN_SECONDS``, ...)
    come from ``serving_common.gate.GateSettings``."""

    model_config = SettingsConfigDict(env_prefix="PREDICTOR_", extra="ignore")

    intra_op_threads: int = Field(default=1, ge=0)
    """onnxruntime threads inside one operator (0: onnxruntime's default, one per core)."""
    inter_op_threads: int = Field(default=1, ge=0)
    """onnxruntime threads across operators (0: onnxruntime's default)."""
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = "all"
    """onnxruntime graph optimisation level."""
    inference_threads: int = Field(default=1, ge=1, le=64)
    """Threads that run ``session.run`` off the event loop (requests beyond that queue)."""
    max_batch_rows: int = Field(default=256, ge=0)
    """Requests waiting together are merged into one run of at most this many rows (0: never merge)."""
    gil_switch_interval_us: int = Field(default=200, ge=50, le=100_000)
    """CPython's GIL switch interval; short, so results reach the event loop without waiting."""
    max_rows: int = Field(default=1024, ge=1)
    """Most rows (first dimension) one request may carry; more is a 400."""
    warmup_rows: int = Field(default=32, ge=0)
    """Rows of a zero-filled warm-up inference run during load (0 disables warm-up)."""
    verify_sha256: bool = True
    """Refuse to become ready when model.onnx does not match the model card's sha256."""
    access_log: bool = False
    """Log one access line per request (with its request id); off keeps the hot path lean."""
    management_port: int = Field(default=0, ge=0, le=65535)
    """Port of the model-repository management API (V2 ``/v2/repository/models/NAME/load|unload``,
    REST only). 0 (default): management is not served at all. The inference ports never serve it."""
    grpc_max_inflight: int = Field(default=64, ge=1, le=100_000)
    """gRPC calls served or queued at once; beyond, RESOURCE_EXHAUSTED (gRPC's own limit)."""
    fault_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Testing only: fraction of inference requests failed with an internal error."""
    fault_delay_ms: float = Field(default=0.0, ge=0.0, le=60_000.0)
    """Testing only: delay added to every inference request, in milliseconds."""
    otlp_endpoint: str | None = None
    """OpenTelemetry collector (OTLP/HTTP base URL, e.g. ``http://otel-collector.monitoring:4318``):
    one span per request, child of the caller's W3C ``traceparent``; unset: tracing off."""
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Fraction of new traces sampled (a caller's sampled ``traceparent`` is always followed)."""
    log_format: Literal["json", "text"] = "json"
    """Log lines: one JSON object per line (for the cluster's log pipeline) or plain text (local use)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged (libraries' own chatter stays at WARNING)."""


class PredictorLoggerSettings(LoggerSettings):
    """The payload logger (``--logger_url``): ``PREDICTOR_LOGGER_*`` (format, queue_size, timeout, ...);
    fields and defaults in ``serving_common.logger_config.LoggerSettings``."""

    model_config = SettingsConfigDict(env_prefix="PREDICTOR_LOGGER_", extra="ignore")
