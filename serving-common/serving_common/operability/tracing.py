"""OpenTelemetry tracing: W3C trace context in, spans out over OTLP/HTTP when an endpoint is
configured (``<PREFIX>_OTLP_ENDPOINT``), nothing at all otherwise (one ``if`` per request).

    configure_tracing("predictor", settings.otlp_endpoint)   # once, from __main__
    with server_span("POST /v2/models/m/infer", headers):     # around each request
        forward_headers = outgoing(headers)                   # traceparent of *this* span

A request's span is the child of the caller's ``traceparent`` (the transformer's span when the
transformer calls the predictor, the client's otherwise); its trace id goes on the request's log
lines (``trace_id``). The SDK is imported only when tracing is on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from serving_common.operability.logs import TRACE_ID

__all__ = ["configure_tracing", "enabled", "outgoing", "server_span", "shutdown_tracing"]

_STATE: dict[str, Any] = {}


def enabled() -> bool:
    return "tracer" in _STATE


def configure_tracing(
    service: str, endpoint: str | None, *, sample_ratio: float = 1.0, export_delay_ms: int = 1000
) -> bool:
    """Spans of ``service`` exported to ``endpoint`` (``http://collector:4318``); False when off."""
    if not endpoint:
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=export_delay_ms))
    _STATE.update(
        tracer=provider.get_tracer(service),
        provider=provider,
        propagator=TraceContextTextMapPropagator(),
        trace=trace,
    )
    return True


def shutdown_tracing() -> None:
    """Exports what is pending (at a clean stop)."""
    provider = _STATE.pop("provider", None)
    _STATE.clear()
    if provider is not None:
        provider.shutdown()


@contextlib.contextmanager
def server_span(name: str, headers: Mapping[str, str], **attributes: str) -> Iterator[None]:
    """The span of one request, child of the caller's ``traceparent``; no-op when tracing is off."""
    if not _STATE:
        yield
        return
    trace, tracer = _STATE["trace"], _STATE["tracer"]
    parent = _STATE["propagator"].extract(carrier=dict(headers))
    with tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER) as span:
        for key, value in attributes.items():
            span.set_attribute(key, value)
        context = span.get_span_context()
        if context.is_valid:
            TRACE_ID.set(format(context.trace_id, "032x"))
        yield


def outgoing(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``headers`` with ``traceparent``/``tracestate`` of the current span (unchanged when off)."""
    if _STATE:
        headers.pop("traceparent", None)
        headers.pop("tracestate", None)
        _STATE["propagator"].inject(carrier=headers)
    return headers
