"""Payload-logger CloudEvents at the door: attributes checked, the body kept as it came.

Three content modes, all answered by the ingress (:mod:`drift_detector.ingress`):

* **binary** (what KServe's agent sends, one event per POST): attributes in ``Ce-*`` headers
  (percent-decoded), the body is the data, ``Content-Type`` the logged request's own.
* **structured** (``application/cloudevents+json``): one JSON event, data in ``data`` (a JSON
  value) or ``data_base64``.
* **batch** (``application/cloudevents-batch+json``): a JSON array of structured events; each
  bad event is reported by its index.

Only the envelope is read here (cheap, no body decoding): required attributes, ``specversion``,
``type``, the ``inferenceservicename`` extension. Traffic that is not inference is recognised
when that is cheap (an empty body; ``ce-metadata`` marking an explainer call, contract C1) and
raises :class:`~drift_detector.errors.Ignored`. The body itself is decoded later, off the request
path (:mod:`drift_detector.body`).
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import orjson
from serving_common.cloudevents import (
    EXT_COMPONENT,
    EXT_INFERENCE_SERVICE,
    EXT_NAMESPACE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
)

from drift_detector.errors import BadEvent, Ignored

__all__ = [
    "BATCH",
    "STRUCTURED",
    "Event",
    "StreamKey",
    "batch_events",
    "binary_event",
    "structured_event",
]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
KINDS: dict[str, Literal["request", "response"]] = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
EXT_METADATA = "metadata"
CALLER_HEADER = "x-model-serving-caller"
"""Contract C1: the explainer marks its predictor calls; the agent copies the header into ``ce-metadata``."""
EXPLAINER = "explainer"
BINARY_HEADER_LENGTH = b"inference-header-content-length"


STREAM_LABELS = ("inferenceservice", "inferenceservice_namespace", "inferenceservice_component")
"""Prometheus labels of a stream (docs/contracts.md "Metric labels"): the InferenceService is
``inferenceservice`` as on every serving series; its namespace and component are qualified because
a scrape adds ``namespace`` and ``component`` of the detector's own pod to its series."""


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A stream: one (namespace, InferenceService, component)."""

    namespace: str
    inference_service: str
    component: str

    def labels(self) -> dict[str, str]:
        """The stream's Prometheus labels (:data:`STREAM_LABELS`)."""
        return dict(zip(STREAM_LABELS, (self.inference_service, self.namespace, self.component), strict=True))


@functools.lru_cache(maxsize=4096)
def _key(namespace: str, inference_service: str, component: str) -> StreamKey:
    return StreamKey(namespace, inference_service, component)


@dataclass(slots=True)
class Event:
    """One accepted event, its body not decoded yet."""

    id: str
    kind: Literal["request", "response"]
    key: StreamKey
    body: bytes | None
    """The raw data (binary mode, ``data_base64``), decoded by the worker; else ``None``."""
    data: Any = None
    """The data as a JSON value (structured and batch ``data``) when ``body`` is ``None``."""
    header_length: int | None = None
    """``Inference-Header-Content-Length`` when the sender kept it (V2 binary extension)."""


# --- binary mode ---------------------------------------------------------------------------------


def binary_event(headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Event:
    """The binary-mode event in an HTTP request's (lower-case) headers and body."""
    attrs: dict[str, str] = {}
    header_length: int | None = None
    content_type = ""
    for name, value in headers:
        if name[:3] == b"ce-":
            text = value.decode("latin-1")
            attrs[name[3:].decode("latin-1")] = unquote(text) if "%" in text else text
        elif name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == BINARY_HEADER_LENGTH and value.isdigit():
            header_length = int(value)
    if not attrs:
        raise BadEvent(
            "not a CloudEvent: no ce-* headers (binary mode) and content-type is "
            f"{content_type or 'missing'!r}, not {STRUCTURED!r} (structured mode) or {BATCH!r} (batch)"
        )
    kind, key = _envelope(attrs, "ce-")
    if not body:
        raise Ignored(f"{kind} event {attrs['id']!r} has an empty body (GET traffic)", reason="empty")
    return Event(attrs["id"], kind, key, body, None, header_length)


# --- structured and batch mode -------------------------------------------------------------------


def structured_event(body: bytes) -> Event:
    """The event of an ``application/cloudevents+json`` body."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadEvent(f"structured CloudEvent is not JSON: {e}", reason="not_json") from e
    return _structured(envelope)


def batch_events(body: bytes) -> tuple[list[tuple[int, Event]], list[tuple[int, BadEvent]]]:
    """The events of an ``application/cloudevents-batch+json`` body and the problems, both by
    index in the batch (:class:`Ignored` ones included: the caller counts them apart)."""
    try:
        envelopes = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadEvent(f"CloudEvents batch is not JSON: {e}", reason="not_json") from e
    if not isinstance(envelopes, list):
        raise BadEvent(f"a CloudEvents batch must be a JSON array of events, not {_kind(envelopes)}")
    events: list[tuple[int, Event]] = []
    problems: list[tuple[int, BadEvent]] = []
    for index, envelope in enumerate(envelopes):
        try:
            events.append((index, _structured(envelope)))
        except BadEvent as e:
            problems.append((index, e))
    return events, problems


def _structured(envelope: Any) -> Event:
    if not isinstance(envelope, dict):
        raise BadEvent(f"a structured CloudEvent must be a JSON object, not {_kind(envelope)}")
    attrs = {
        k: v if isinstance(v, str) else orjson.dumps(v).decode()
        for k, v in envelope.items()
        if k not in ("data", "data_base64")
    }
    kind, key = _envelope(attrs, "")
    if "data_base64" in envelope:
        raw = envelope["data_base64"]
        try:
            body = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
        except (binascii.Error, ValueError) as e:
            raise BadEvent(f"data_base64 is not valid base64: {e}") from e
        if body is None:
            raise BadEvent(f"data_base64 must be a string, not {_kind(raw)}")
        if not body:
            raise Ignored(f"{kind} event {attrs['id']!r} has empty data", reason="empty")
        return Event(attrs["id"], kind, key, body)
    data = envelope.get("data")
    if data is None or data == "" or data == {}:
        raise Ignored(f"{kind} event {attrs['id']!r} has no data (GET traffic)", reason="empty")
    if isinstance(data, str):  # JSON text carried as a string
        return Event(attrs["id"], kind, key, data.encode())
    return Event(attrs["id"], kind, key, None, data)


# --- attributes ----------------------------------------------------------------------------------


def _envelope(attrs: Mapping[str, str], prefix: str) -> tuple[Literal["request", "response"], StreamKey]:
    missing = [name for name in REQUIRED if not attrs.get(name)]
    if missing:
        raise BadEvent("CloudEvent lacks required attribute(s): " + ", ".join(prefix + n for n in missing))
    if attrs["specversion"] != "1.0":
        raise BadEvent(f"CloudEvents specversion {attrs['specversion']!r} is not supported; expected '1.0'")
    kind = KINDS.get(attrs["type"])
    if kind is None:
        raise BadEvent(
            f"unknown CloudEvent type {attrs['type']!r}; expected {REQUEST_TYPE!r} or {RESPONSE_TYPE!r}",
            reason="unknown_type",
        )
    isvc = attrs.get(EXT_INFERENCE_SERVICE)
    if not isvc:
        raise BadEvent(f"CloudEvent lacks the {prefix + EXT_INFERENCE_SERVICE!r} extension")
    metadata = attrs.get(EXT_METADATA)
    if metadata and metadata != "{}" and _from_explainer(metadata):
        raise Ignored(f"{kind} event {attrs['id']!r} is an explainer call", reason="explainer")
    return kind, _key(attrs.get(EXT_NAMESPACE, ""), isvc, attrs.get(EXT_COMPONENT, ""))


def _from_explainer(metadata: str) -> bool:
    """Whether ``ce-metadata`` (the agent's JSON of copied headers, ``{"X-Model-Serving-Caller":
    ["explainer"]}``: Go's canonical header names, a list of values) marks an explainer call."""
    try:
        doc = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(doc, dict):
        return False
    for name, values in doc.items():
        if str(name).lower() == CALLER_HEADER:
            listed = values if isinstance(values, list) else [values]
            return any(str(v).strip().lower() == EXPLAINER for v in listed)
    return False


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
