"""Reads one payload-logger CloudEvent from an HTTP request (binary or structured content mode).

Binary mode (what KServe's agent sends): attributes in ``ce-*`` headers (percent-decoded), the
body is the data. Structured mode: ``Content-Type: application/cloudevents+json`` and the whole
event, data included (``data`` or ``data_base64``), is the JSON body. Every problem raises
:class:`~drift_detector.errors.BadEvent` with a reason and a message naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import orjson
from serving_common.cloudevents import (
    EXT_COMPONENT,
    EXT_ENDPOINT,
    EXT_INFERENCE_SERVICE,
    EXT_NAMESPACE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
)

from drift_detector import binary
from drift_detector.errors import BadEvent

__all__ = ["Event", "parse"]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
KINDS: dict[str, Literal["request", "response"]] = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}


@dataclass(frozen=True)
class Event:
    """The parts of a payload-logger event the detector uses."""

    id: str
    kind: Literal["request", "response"]
    source: str
    inference_service: str
    namespace: str
    component: str
    endpoint: str
    data: Any
    """The JSON body: a V1 or V2 inference request or response."""


def parse(headers: Mapping[str, str], body: bytes) -> Event:
    """The event in an HTTP request; raises :class:`BadEvent` with the reason."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    if any(k.startswith("ce-") for k in lowered):
        attrs = {k[3:]: unquote(v) for k, v in lowered.items() if k.startswith("ce-")}
        _check_attributes(attrs, "binary")
        data = _json(body, f"body (content-type {content_type or 'none'!r})")
        return _event(attrs, data)
    if content_type == BATCH:
        raise BadEvent("batched CloudEvents (application/cloudevents-batch+json) are not supported")
    if content_type != STRUCTURED:
        raise BadEvent(
            "not a CloudEvent: no ce-* headers (binary mode) and content-type is "
            f"{content_type or 'missing'!r}, not {STRUCTURED!r} (structured mode)"
        )
    envelope = _json(body, "structured CloudEvent")
    if not isinstance(envelope, dict):
        raise BadEvent(f"structured CloudEvent must be a JSON object, not {type(envelope).__name__}")
    attrs = {k: v for k, v in envelope.items() if k not in ("data", "data_base64")}
    for key, value in attrs.items():
        if not isinstance(value, str):
            attrs[key] = str(value)
    _check_attributes(attrs, "structured")
    if "data_base64" in envelope:
        try:
            raw = base64.b64decode(str(envelope["data_base64"]), validate=True)
        except (binascii.Error, ValueError) as e:
            raise BadEvent(f"data_base64 is not valid base64: {e}") from e
        data = _json(raw, "data_base64")
    elif "data" in envelope:
        data = envelope["data"]
        if isinstance(data, str):
            data = _json(data.encode(), "data (a string)")
    else:
        raise BadEvent("structured CloudEvent has no data", reason="bad_payload")
    return _event(attrs, data)


def _check_attributes(attrs: Mapping[str, Any], mode: str) -> None:
    missing = [name for name in REQUIRED if not attrs.get(name)]
    if missing:
        prefix = "ce-" if mode == "binary" else ""
        raise BadEvent(
            f"CloudEvent ({mode} mode) lacks required attribute(s): "
            + ", ".join(prefix + name for name in missing)
        )
    if attrs["specversion"] != "1.0":
        raise BadEvent(f"CloudEvents specversion {attrs['specversion']!r} is not supported; expected '1.0'")
    if attrs["type"] not in KINDS:
        raise BadEvent(
            f"unknown CloudEvent type {attrs['type']!r}; expected {REQUEST_TYPE!r} or {RESPONSE_TYPE!r}",
            reason="unknown_type",
        )
    if not attrs.get(EXT_INFERENCE_SERVICE):
        raise BadEvent(f"CloudEvent lacks the {EXT_INFERENCE_SERVICE!r} extension")


def _event(attrs: Mapping[str, Any], data: Any) -> Event:
    return Event(
        id=str(attrs["id"]),
        kind=KINDS[str(attrs["type"])],
        source=str(attrs["source"]),
        inference_service=str(attrs[EXT_INFERENCE_SERVICE]),
        namespace=str(attrs.get(EXT_NAMESPACE, "")),
        component=str(attrs.get(EXT_COMPONENT, "")),
        endpoint=str(attrs.get(EXT_ENDPOINT, "")),
        data=data,
    )


def _json(raw: bytes, what: str) -> Any:
    if not raw.strip():
        raise BadEvent(f"{what} is empty; expected a JSON inference request or response", reason="not_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        document = binary.decode(raw)  # a V2 body with the binary tensor extension
        if document is not None:
            return document
        raise BadEvent(f"{what} is not JSON: {e}", reason="not_json") from e
