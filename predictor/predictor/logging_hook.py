"""Payload logging for the local stack: ``--logger_url`` sends KServe-agent CloudEvents.

In a cluster KServe's agent does this; locally the predictor does it itself through
``serving_common.payload_logger`` (bounded queue, never slows inference, drops counted).
The logger's counts are exported as ``predictor_payload_logger_events_total{outcome}``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from serving_common.payload_logger import PayloadLogger, request_id

from predictor.settings import PredictorSettings


class LoggerCollector(Collector):
    def __init__(self, logger: PayloadLogger, model: str) -> None:
        self.logger = logger
        self.model = model

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.logger.stats()
        events = CounterMetricFamily(
            "predictor_payload_logger_events",
            "Payload-logger CloudEvents by outcome (sent, failed, dropped).",
            labels=["model", "outcome"],
        )
        for outcome in ("sent", "failed", "dropped"):
            events.add_metric([self.model, outcome], getattr(stats, outcome))
        yield events
        pending = GaugeMetricFamily(
            "predictor_payload_logger_pending", "Events queued, not yet sent.", labels=["model"]
        )
        pending.add_metric([self.model], stats.pending)
        yield pending


class PayloadHook:
    """Called by the REST routes after each successful request (see rest.InferenceRoutes)."""

    def __init__(self, logger: PayloadLogger) -> None:
        self.logger = logger

    def __call__(
        self,
        headers: Mapping[str, str],
        request: bytes,
        request_type: str,
        response: bytes,
        response_type: str,
    ) -> None:
        event_id = request_id(headers)
        self.logger.log_request(event_id, request, request_type)
        self.logger.log_response(event_id, response, response_type)


def payload_hook(
    args: argparse.Namespace, settings: PredictorSettings, model: str, app: FastAPI
) -> PayloadHook:
    logger = PayloadLogger(
        args.logger_url,
        mode=args.logger_mode,
        inference_service=args.inference_service or model,
        namespace=args.namespace,
        component="predictor",
        endpoint=args.endpoint,
        queue_size=settings.logger_queue_size,
        timeout=settings.logger_timeout,
    )
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        await logger.start()
        try:
            async with original(a) as state:
                yield state
        finally:
            await logger.stop()

    app.router.lifespan_context = lifespan
    REGISTRY.register(LoggerCollector(logger, model))
    return PayloadHook(logger)
