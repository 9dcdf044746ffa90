"""OTLP/HTTP trace bodies -> spans as plain dicts, with the official ``opentelemetry-proto`` types.

``decode(body, content_type, content_encoding)`` accepts what an OpenTelemetry exporter sends to
``POST /v1/traces``: an ``ExportTraceServiceRequest`` as protobuf (``application/x-protobuf``) or
as OTLP/JSON (``application/json``: lowerCamelCase names, trace and span ids as hex, enums as
integers), optionally gzip-compressed. Anything else raises :class:`OtlpError` with a message
naming the field and what was expected (the receiver answers it with 400 / 415 / 413).

A span comes out as::

    {"traceId": "4bf9...", "spanId": "00f0...", "parentSpanId": "" | "...", "service": "predictor",
     "name": "ModelInfer", "kind": "SERVER", "startNs": 1, "endNs": 2, "durationMs": 0.000001,
     "status": "UNSET" | "OK" | "ERROR", "statusMessage": "", "attributes": {"model": "..."}}
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["MAX_BODY", "OtlpError", "Span", "decode"]

MAX_BODY = 8 * 1024 * 1024
Span = dict[str, Any]
PROTOBUF, JSON = "application/x-protobuf", "application/json"
_IDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
_SNAKE = {"trace_id": "traceId", "span_id": "spanId", "parent_span_id": "parentSpanId"}
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_KIND_NAMES = {f"SPAN_KIND_{name}" for name in _KINDS.values()}


class OtlpError(ValueError):
    """A body that is not an OTLP trace export; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode(body: bytes, content_type: str, content_encoding: str = "") -> list[Span]:
    """Every span of the export, flattened; raises :class:`OtlpError`."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in (PROTOBUF, JSON):
        raise OtlpError(
            f"Content-Type {content_type or '(none)'!r}: expected {PROTOBUF} or {JSON} (OTLP/HTTP)", 415
        )
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = _gunzip(body)
    elif encoding not in ("", "identity"):
        raise OtlpError(f"Content-Encoding {content_encoding!r}: expected gzip or none", 415)
    request = _from_protobuf(body) if kind == PROTOBUF else _from_json(body)
    return _spans(request)


def _gunzip(body: bytes) -> bytes:
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(body, MAX_BODY + 1)
    except zlib.error as e:
        raise OtlpError(f"body: Content-Encoding gzip but not gzip data ({e})") from e
    if not inflate.eof and len(out) <= MAX_BODY:
        raise OtlpError("body: Content-Encoding gzip but not complete gzip data (truncated)")
    if len(out) > MAX_BODY:
        raise OtlpError(f"body: more than {MAX_BODY} bytes once decompressed", 413)
    return out


def _from_protobuf(body: bytes) -> ExportTraceServiceRequest:
    try:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
    except DecodeError as e:
        raise OtlpError(f"body: not a protobuf ExportTraceServiceRequest ({e})") from e
    return request


def _from_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise OtlpError(f"body: not JSON ({e})") from e
    if not isinstance(doc, dict):
        raise OtlpError(f"body: expected a JSON object with resourceSpans, got {type(doc).__name__}")
    _hex_ids_to_base64(doc)
    try:
        request: ExportTraceServiceRequest = json_format.ParseDict(
            doc, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as e:
        raise OtlpError(f"body: not an OTLP/JSON ExportTraceServiceRequest ({e})") from e
    return request


def _hex_ids_to_base64(doc: dict[str, Any]) -> None:
    """OTLP/JSON writes ids as hex, protobuf's JSON mapping expects base64: convert in place."""
    for r, resource in enumerate(_list(doc, "resourceSpans", "body")):
        for s, scope in enumerate(_list(resource, "scopeSpans", f"resourceSpans[{r}]")):
            for i, span in enumerate(_list(scope, "spans", f"resourceSpans[{r}].scopeSpans[{s}]")):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                _convert_ids(span, where)
                for j, link in enumerate(_list(span, "links", where)):
                    _convert_ids(link, f"{where}.links[{j}]")


def _list(node: Any, key: str, where: str) -> list[Any]:
    if not isinstance(node, dict):
        raise OtlpError(f"{where}: expected a JSON object, got {type(node).__name__}")
    value = node.get(key, node.get(_snake(key), []))
    if not isinstance(value, list):
        raise OtlpError(f"{where}.{key}: expected a JSON array, got {type(value).__name__}")
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _convert_ids(span: Any, where: str) -> None:
    if not isinstance(span, dict):
        raise OtlpError(f"{where}: expected a JSON object, got {type(span).__name__}")
    kind = span.get("kind")
    if kind is not None and kind not in _KINDS and kind not in _KIND_NAMES:
        raise OtlpError(f"{where}.kind: expected 0-5 or SPAN_KIND_<NAME>, got {kind!r}")
    for key in list(span):
        name = _SNAKE.get(key, key)
        if name not in _IDS or span[key] in ("", None):
            continue
        value = span[key]
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != _IDS[name]:
            raise OtlpError(
                f"{where}.{name}: expected {_IDS[name] * 2} hex digits (OTLP/JSON), got {value!r}"
            )
        span[key] = base64.b64encode(raw).decode()


def _spans(request: ExportTraceServiceRequest) -> list[Span]:
    out: list[Span] = []
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        for s, scope in enumerate(resource_spans.scope_spans):
            for i, span in enumerate(scope.spans):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                for name, raw, size in (
                    ("traceId", span.trace_id, 16),
                    ("spanId", span.span_id, 8),
                    ("parentSpanId", span.parent_span_id, 8),
                ):
                    if (len(raw) != size or not any(raw)) and (raw or name != "parentSpanId"):
                        raise OtlpError(
                            f"{where}.{name}: expected {size} bytes, not all zero, got {raw.hex()!r}"
                        )
                if not span.name:
                    raise OtlpError(f"{where}.name: expected the span's name, got none")
                if span.start_time_unix_nano == 0:
                    raise OtlpError(f"{where}.startTimeUnixNano: expected the start time (ns since 1970)")
                if span.end_time_unix_nano < span.start_time_unix_nano:
                    raise OtlpError(f"{where}.endTimeUnixNano: expected >= startTimeUnixNano")
                out.append(
                    {
                        "traceId": span.trace_id.hex(),
                        "spanId": span.span_id.hex(),
                        "parentSpanId": span.parent_span_id.hex(),
                        "service": service,
                        "name": span.name,
                        "kind": _KINDS.get(span.kind, str(span.kind)),
                        "startNs": span.start_time_unix_nano,
                        "endNs": span.end_time_unix_nano,
                        "durationMs": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
                        "status": _STATUS.get(span.status.code, str(span.status.code)),
                        "statusMessage": span.status.message,
                        "attributes": _attributes(span.attributes),
                    }
                )
    return out


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)
