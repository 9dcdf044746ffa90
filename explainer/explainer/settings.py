"""Explainer settings: everything that is not a KServe flag, read from ``EXPLAINER_*`` env vars."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from serving_common.framework.predictor_client import PredictorProtocol
from serving_common.gate import GateSettings


class ExplainerSettings(GateSettings):
    """Typed, bounded settings; ``os.environ`` is read nowhere else in the explainer. Limits,
    shedding and drain (``EXPLAINER_MAX_BODY_BYTES``, ``..._MAX_HEADERS``, ``..._DRAIN_SECONDS``, ...)
    come from ``serving_common.gate.GateSettings``."""

    model_config = SettingsConfigDict(env_prefix="EXPLAINER_", extra="ignore")

    max_inflight: int = Field(default=4, ge=1, le=1000)
    """Explanations served at once (each is CPU-heavy); beyond, 503 with ``Retry-After``."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Largest explain body accepted (413 beyond; ``EXPLAINER_MAX_RECORDS`` records are small)."""

    predictor_protocol: PredictorProtocol = "grpc-v2"
    """How to call the predictor when ``--predictor_protocol`` is not given (not KServe's v1 default)."""
    predictor_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    """Seconds one predictor call may take; past it the caller gets a 504."""
    predictor_max_rows: int = Field(default=1024, ge=1)
    """Rows per predictor request: the perturbation samples of one record go in requests of at most
    this many rows (the predictor's own limit, PREDICTOR_MAX_ROWS, defaults to 1024)."""
    background_size: int = Field(default=10, ge=1, le=200)
    """Background for Kernel SHAP: this many k-means centres (weighted by cluster size) of the
    bundle's reference sample. Cost grows linearly with it."""
    nsamples: int | None = Field(default=None, ge=2)
    """Coalitions evaluated per record; unset: every coalition when there are at most 11 varying
    features (exact Shapley values, no sampling), else 2*M + 2048 sampled ones."""
    seed: int = Field(default=0, ge=0)
    """Seed of the coalition sampling (used only when not every coalition is evaluated)."""
    max_records: int = Field(default=16, ge=1)
    """Most records one explain request may carry; more is a 400."""
    explained_class: str | None = None
    """The class whose probability is explained (default: the spec's last class, the positive one)."""
    otlp_endpoint: str | None = None
    """OpenTelemetry collector (OTLP/HTTP base URL, e.g. ``http://otel-collector.monitoring:4318``):
    one span per explain request, the predictor calls its children; unset: tracing off."""
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Fraction of new traces sampled (a caller's sampled ``traceparent`` is always followed)."""
    log_format: Literal["json", "text"] = "json"
    """Log lines: one JSON object per line (for the cluster's log pipeline) or plain text (local use)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged (libraries' own chatter stays at WARNING)."""
