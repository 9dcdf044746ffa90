"""The payload logger's flags, settings and construction: one place for predictor and transformer.

Flags (the agent's, on the component's command line)::

    --logger_url URL  --logger_mode all|request|response  --inference_service NAME
    --namespace NS    --endpoint NAME

Settings (``<COMPONENT>_LOGGER_*`` env vars): a component subclasses :class:`LoggerSettings`
with its own prefix (``PREDICTOR_LOGGER_``, ``TRANSFORMER_LOGGER_``), or calls
:func:`logger_settings` with the prefix. Then::

    add_logger_arguments(parser)
    ...
    logger = build_payload_logger(args, logger_settings("TRANSFORMER"), component="transformer")
    # None without --logger_url; else call logger.open() / close() (or await start() / stop())

Pure: importable in every virtualenv (pydantic-settings only).
"""

from __future__ import annotations

import argparse
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving_common.cloudevents import SOURCE_PREFIX
from serving_common.event_encoding import canonical_header
from serving_common.payload_logger import PayloadLogger

__all__ = ["LoggerSettings", "add_logger_arguments", "build_payload_logger", "logger_settings"]


class LoggerSettings(BaseSettings):
    """The payload logger's tuning; a component reads it with its own ``<COMPONENT>_LOGGER_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    format: Literal["binary", "batch"] = "binary"
    """``binary``: one POST per event, exactly KServe's agent. ``batch``: one POST of
    ``application/cloudevents-batch+json`` (structured events) per flush; the drift detector reads both."""
    queue_size: int = Field(default=4096, ge=1, le=1_000_000)
    """Events not yet sent (queued or in flight) before new ones are dropped (and counted)."""
    timeout: float = Field(default=2.0, gt=0.0, le=300.0)
    """Seconds the receiver may take to accept a connection or answer."""
    workers: int = Field(default=1, ge=1, le=16)
    """Sender threads, each with its own keep-alive connection."""
    linger_ms: float = Field(default=10.0, ge=0.0, le=1000.0)
    """Milliseconds a sender waits for answers and lets events gather into one write (unless a full
    batch is waiting); only the logging latency, never a request's."""
    max_batch: int = Field(default=1024, ge=1, le=100_000)
    """Most events one write carries (pipelined requests, or one batch document)."""
    drain_timeout: float = Field(default=5.0, ge=0.0, le=300.0)
    """Seconds a stopping component spends sending what is queued; the rest is dropped (counted)."""
    source: str = SOURCE_PREFIX
    """``ce-source`` (the agent writes its own address; the pod name in a cluster)."""
    metadata_headers: list[str] = Field(default_factory=list)
    """Request headers copied into ``ce-metadata`` (the agent's ``--metadata-headers``), JSON list."""


def logger_settings(component_prefix: str) -> LoggerSettings:
    """``LoggerSettings`` read from ``<component_prefix>_LOGGER_*`` (e.g. ``"TRANSFORMER"``)."""
    prefix = f"{component_prefix.upper().rstrip('_')}_LOGGER_"
    return LoggerSettings(_env_prefix=prefix)  # type: ignore[call-arg]


def add_logger_arguments(parser: argparse.ArgumentParser) -> None:
    """The logger flags, as KServe's agent names its own (``--log-url`` etc., underscored here)."""
    group = parser.add_argument_group("payload logger")
    group.add_argument("--logger_url", default=None, help="send payload-logger CloudEvents to this URL")
    group.add_argument("--logger_mode", default="all", choices=["all", "request", "response"])
    group.add_argument(
        "--inference_service",
        default=None,
        help="InferenceService name in logged events (default: the model name)",
    )
    group.add_argument("--namespace", default="default", help="namespace in logged events")
    group.add_argument("--endpoint", default="", help="endpoint in logged events (KServe leaves it empty)")


def build_payload_logger(
    args: argparse.Namespace, settings: LoggerSettings, *, component: str, model_name: str | None = None
) -> PayloadLogger | None:
    """The logger the flags ask for (not started), or ``None`` without ``--logger_url``."""
    if not args.logger_url:
        return None
    return PayloadLogger(
        args.logger_url,
        mode=args.logger_mode,
        inference_service=args.inference_service or model_name or args.model_name,
        namespace=args.namespace,
        component=component,
        endpoint=args.endpoint,
        source=settings.source,
        format=settings.format,
        queue_size=settings.queue_size,
        timeout=settings.timeout,
        workers=settings.workers,
        drain_timeout=settings.drain_timeout,
        linger=settings.linger_ms / 1000.0,
        max_batch=settings.max_batch,
    )


def metadata_header_names(settings: LoggerSettings) -> tuple[str, ...]:
    """The configured metadata headers in Go's canonical form (what the agent writes as keys)."""
    return tuple(canonical_header(h) for h in settings.metadata_headers)
