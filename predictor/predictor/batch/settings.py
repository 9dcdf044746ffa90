"""Batch scoring settings: ``PREDICTOR_BATCH_*`` env vars (command-line flags override them).

``JOB_COMPLETION_INDEX`` (set by Kubernetes in an Indexed Job's pods) is the shard index when
``--shard-index`` is not given. ``os.environ`` is read nowhere else in batch scoring.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BatchSettings"]


class BatchSettings(BaseSettings):
    """Typed, bounded defaults of ``python -m predictor.batch``."""

    model_config = SettingsConfigDict(env_prefix="PREDICTOR_BATCH_", extra="ignore")

    chunk_rows: int = Field(default=10_000, ge=1, le=10_000_000)
    """Records read, scored, written and checkpointed together; memory is bounded by it."""
    batch_rows: int = Field(default=1024, ge=1, le=1_000_000)
    """Rows per model call (``session.run``, or one V2 request: keep it within ``PREDICTOR_MAX_ROWS``)."""
    engine: Literal["onnx", "v2-rest", "v2-grpc"] = "onnx"
    """``onnx``: in-process onnxruntime on the bundle; ``v2-rest`` / ``v2-grpc``: a running predictor."""
    intra_op_threads: int = Field(default=1, ge=0)
    """onnxruntime threads inside one operator (0: one per core)."""
    concurrency: int = Field(default=4, ge=1, le=256)
    """V2 engines: requests in flight at once."""
    retries: int = Field(default=5, ge=0, le=100)
    """V2 engines: retries of a request answered 503/504 (or unreachable), with exponential backoff."""
    backoff_seconds: float = Field(default=0.5, gt=0.0, le=60.0)
    """V2 engines: first backoff; doubled on each retry, capped at 30 s."""
    timeout_seconds: float = Field(default=60.0, gt=0.0, le=3600.0)
    """V2 engines: timeout of one request."""
    log_format: Literal["json", "text"] = "text"
    """Log lines: ``text`` for a terminal, ``json`` (one object per line) in a cluster (the chart's Job)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level logged (libraries' own chatter stays at WARNING)."""
    progress: Literal["auto", "always", "never"] = "auto"
    """Progress bar on stderr: ``auto`` shows it only when stderr is a terminal."""
    max_reject_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    """Exit 7 when more than this fraction of the shard's records is rejected (1.0: never)."""
    job_completion_index: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("JOB_COMPLETION_INDEX")
    )
    """Set by Kubernetes in an Indexed Job: the shard index when ``--shard-index`` is absent."""
