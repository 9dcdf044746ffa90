"""Transformer settings: everything that is not a KServe flag, read from ``TRANSFORMER_*`` env vars."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from serving_common.framework.predictor_client import PredictorProtocol
from serving_common.gate import GateSettings
from serving_common.logger_config import LoggerSettings


class TransformerSettings(GateSettings):
    """Typed, bounded settings; ``os.environ`` is read nowhere else in the transformer. Limits,
    shedding and drain (``TRANSFORMER_MAX_BODY_BYTES``, ``..._MAX_HEADERS``, ``..._DRAIN_SECONDS``, ...)
    come from ``serving_common.gate.GateSettings``."""

    model_config = SettingsConfigDict(env_prefix="TRANSFORMER_", extra="ignore")

    predictor_protocol: PredictorProtocol = "grpc-v2"
    """How to call the predictor when ``--predictor_protocol`` is not given. KServe's own
    default (v1) is deliberately not used: the chart passes the flag explicitly."""
    predictor_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    """Seconds one predictor call may take; past it the caller gets a 504 (gRPC DEADLINE_EXCEEDED)."""
    predictor_retries: int = Field(default=0, ge=0, le=5)
    """Retries of a predictor call that failed with UNAVAILABLE (gRPC) before giving up with a 503."""
    max_records: int = Field(default=1024, ge=1)
    """Most records one request may carry; more is a 400."""
    access_log: bool = False
    """One log line per HTTP request (uvicorn's access log and KServe's trace lines). Off by
    default: measured at ~8 % of a 1-row request's CPU; errors are logged either way."""
    otlp_endpoint: str | None = None
    """OpenTelemetry collector (OTLP/HTTP base URL, e.g. ``http://otel-collector.monitoring:4318``):
    one span per request, child of the caller's W3C ``traceparent``; unset: tracing off."""
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Fraction of new traces sampled (a caller's sampled ``traceparent`` is always followed)."""
    log_format: Literal["json", "text"] = "json"
    """Log lines: one JSON object per line (for the cluster's log pipeline) or plain text (local use)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged (libraries' own chatter stays at WARNING)."""


class TransformerLoggerSettings(LoggerSettings):
    """The payload logger (``--logger_url``): ``TRANSFORMER_LOGGER_*`` (format, queue_size, timeout, ...);
    fields and defaults in ``serving_common.logger_config.LoggerSettings``."""

    model_config = SettingsConfigDict(env_prefix="TRANSFORMER_LOGGER_", extra="ignore")
