"""The predictor's payload hook: the one seam every inference exchange passes through.

The REST fast path (``rest.py``) and gRPC ``ModelInfer`` (``grpc_service.py``) call
:meth:`PayloadHook.log_exchange` once per answered client request, *before* the answer is sent,
with the request as received (bytes and content type; gRPC: its V2 JSON, made later in the
logger's thread), whether the answer is a 200 / OK, and the answer's bytes. Explainer calls
(``caller.py``) never reach it. The hook picks the event id (the request's ``ce-id``, else a
new one) and ``ce-metadata``, and hands the exchange to ``serving_common.payload_logger``, which
queues the request event, and the response event for a 200, as KServe's agent does.

The logger's counts are exported as ``predictor_payload_logger_events_total{model_name, outcome}``
(sent, failed, dropped) and ``predictor_payload_logger_pending{model_name}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from serving_common.event_encoding import Body, metadata_json
from serving_common.logger_config import LoggerSettings, build_payload_logger, metadata_header_names
from serving_common.payload_logger import PayloadLogger

from predictor.ids import new_id

__all__ = ["LoggerCollector", "PayloadHook", "payload_hook"]


class LoggerCollector(Collector):
    def __init__(self, logger: PayloadLogger, model: str) -> None:
        self.logger = logger
        self.model = model

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.logger.stats()
        events = CounterMetricFamily(
            "predictor_payload_logger_events",
            "Payload-logger CloudEvents by outcome (sent, failed, dropped).",
            labels=["model_name", "outcome"],
        )
        for outcome in ("sent", "failed", "dropped"):
            events.add_metric([self.model, outcome], getattr(stats, outcome))
        yield events
        pending = GaugeMetricFamily(
            "predictor_payload_logger_pending", "Events accepted, not yet sent.", labels=["model_name"]
        )
        pending.add_metric([self.model], stats.pending)
        yield pending
        cpu = CounterMetricFamily(
            "predictor_payload_logger_cpu_seconds",
            "CPU time of the payload logger's sender threads (what logging costs besides the hook).",
            labels=["model_name"],
        )
        cpu.add_metric([self.model], stats.cpu_seconds)
        yield cpu


class PayloadHook:
    """Hands each exchange to the payload logger; cheap enough to call on the request path."""

    __slots__ = ("logger", "metadata_headers")

    def __init__(self, logger: PayloadLogger, metadata_headers: tuple[str, ...] = ()) -> None:
        self.logger = logger
        self.metadata_headers = metadata_headers

    def log_exchange(
        self,
        headers: Mapping[str, Any],
        request: Body,
        content_type: str | None,
        ok: bool,
        response: Body,
        received_ns: int,
    ) -> None:
        """``headers``: the request's, lower-case names (ASGI headers, gRPC metadata)."""
        event_id = headers.get("ce-id") or new_id()
        metadata = metadata_json(headers, self.metadata_headers) if self.metadata_headers else "{}"
        self.logger.log_exchange(event_id, request, content_type, ok, response, received_ns, metadata)


def payload_hook(
    args: argparse.Namespace, settings: LoggerSettings, model: str, app: FastAPI
) -> PayloadHook | None:
    """The hook ``--logger_url`` asks for (its sender running), stopped with the REST app; else None."""
    logger = build_payload_logger(args, settings, component="predictor", model_name=model)
    if logger is None:
        return None
    logger.open()  # now: gRPC serves before the REST app's lifespan starts
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        try:
            async with original(a) as state:
                yield state
        finally:
            await asyncio.to_thread(logger.close)

    app.router.lifespan_context = lifespan
    REGISTRY.register(LoggerCollector(logger, model))
    return PayloadHook(logger, metadata_header_names(settings))
