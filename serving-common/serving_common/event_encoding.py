"""The two wire forms of a payload-logger event, byte for byte as KServe's agent writes them.

KServe's agent (``pkg/logger/worker.go``) builds each event with the CloudEvents Go SDK and
sends it in *binary* content mode. The SDK names the headers ``Ce-`` + the attribute with its
first letter upper-cased (``Ce-Inferenceservicename``), formats times as RFC 3339 in UTC with
nanoseconds and trailing zeros trimmed (Go's ``time.RFC3339Nano``), writes an empty extension
as an empty header (``Ce-Endpoint:``), omits ``Content-Type`` when the request had none, and
Go's HTTP client writes the headers sorted by name. :class:`BinaryEncoder` writes exactly those
headers in that order (``Host``, ``User-Agent`` and ``Content-Length`` first, as Go does).

:class:`StructuredEncoder` writes the opt-in ``batch`` form: one JSON array of structured
CloudEvents (``application/cloudevents-batch+json``), the same attributes as lowercase keys,
the body in ``data`` when it is JSON, else in ``data_base64``.

Pure: the standard library only (``orjson`` is imported when a batch is first encoded).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from serving_common.cloudevents import (
    EXT_COMPONENT,
    EXT_ENDPOINT,
    EXT_INFERENCE_SERVICE,
    EXT_NAMESPACE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
)

__all__ = [
    "BATCH_CONTENT_TYPE",
    "EXT_METADATA",
    "EXT_RECORDED_TIME",
    "BinaryEncoder",
    "Event",
    "Identity",
    "StructuredEncoder",
    "canonical_header",
    "go_time",
    "metadata_json",
]

EXT_METADATA = "metadata"
"""JSON of the request headers the agent was told to copy (``--metadata-headers``), ``{}`` by default."""
EXT_RECORDED_TIME = "recordedtime"
"""When the agent sent the event; ``time`` is when the request arrived / the response was ready."""
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
USER_AGENT = "model-serving-payload-logger"

Body = bytes | Callable[[], bytes]
"""Event bodies are bytes, or a function that makes them in the sender thread (gRPC's V2 JSON)."""


class Event(NamedTuple):
    """One queued event; cheap to make on the request path (no formatting happens here)."""

    type: str
    id: str
    body: Body
    content_type: str | None
    time_ns: int
    metadata: str


class Identity(NamedTuple):
    """The sender's identity in every event (the agent's flags)."""

    source: str
    inference_service: str
    namespace: str
    component: str
    endpoint: str


def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``x-model-serving-caller`` -> ``X-Model-Serving-Caller``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def metadata_json(headers: Mapping[str, Any], wanted: Iterable[str]) -> str:
    """``ce-metadata`` as the agent writes it: ``{"Canonical-Name": ["value"]}``, keys sorted, no spaces.

    ``wanted`` are canonical names (the agent matches Go's canonical request header names
    exactly, so a chart must list ``X-Model-Serving-Caller``, not ``x-model-serving-caller``).
    """
    found: dict[str, list[str]] = {}
    wanted_set = set(wanted)
    for name, value in headers.items():
        key = canonical_header(name)
        if key in wanted_set and isinstance(value, str):
            found.setdefault(key, []).append(value)
    return json.dumps(found, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


_second: tuple[int, str] = (-1, "")


def go_time(ns: int) -> str:
    """``time.Time.UTC().Format(time.RFC3339Nano)`` for a ``time.time_ns()`` value."""
    global _second
    seconds, fraction = divmod(ns, 1_000_000_000)
    cached, prefix = _second
    if seconds != cached:  # one strftime per second, not per event (one tuple: thread-safe)
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, prefix)
    if not fraction:
        return prefix + "Z"
    return f"{prefix}.{fraction:09d}".rstrip("0") + "Z"


def _header_bytes(value: str) -> bytes:
    raw = value.encode("latin-1", "replace")
    return raw.replace(b"\r", b"").replace(b"\n", b"") if b"\r" in raw or b"\n" in raw else raw


_TYPES = {t: t.encode() for t in (REQUEST_TYPE, RESPONSE_TYPE)}


def _template(value: str) -> bytes:
    return _header_bytes(value).replace(b"%", b"%%")


def body_of(event: Event) -> bytes:
    return event.body if isinstance(event.body, bytes) else event.body()


class BinaryEncoder:
    """One HTTP/1.1 POST per event (headers + raw body), ready for the socket."""

    def __init__(self, url: str, identity: Identity, user_agent: str = USER_AGENT) -> None:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Go's header order: the request line, Host, User-Agent, Content-Length, then sorted names.
        self._head = b"".join(
            [
                b"POST " + _template(path) + b" HTTP/1.1\r\n",
                b"Host: " + _template(parts.netloc) + b"\r\n",
                b"User-Agent: " + _template(user_agent) + b"\r\n",
                b"Content-Length: %d\r\n",
                b"Ce-Component: " + _template(identity.component) + b"\r\n",
                b"Ce-Endpoint: " + _template(identity.endpoint) + b"\r\n",
                b"Ce-Id: %b\r\n",
                b"Ce-Inferenceservicename: " + _template(identity.inference_service) + b"\r\n",
                b"Ce-Metadata: %b\r\n",
                b"Ce-Namespace: " + _template(identity.namespace) + b"\r\n",
                b"Ce-Recordedtime: %b\r\n",
                b"Ce-Source: " + _template(identity.source) + b"\r\n",
                b"Ce-Specversion: 1.0\r\n",
                b"Ce-Time: %b\r\n",
                b"Ce-Type: %b\r\n",
            ]
        )

    def encode(self, event: Event, recorded: bytes) -> bytes:
        body = body_of(event)
        metadata = b"{}" if event.metadata == "{}" else _header_bytes(event.metadata)
        head = self._head % (
            len(body),
            _header_bytes(event.id),
            metadata,
            recorded,
            go_time(event.time_ns).encode(),
            _TYPES.get(event.type) or event.type.encode(),
        )
        if event.content_type:
            return b"%bContent-Type: %b\r\n\r\n%b" % (head, _header_bytes(event.content_type), body)
        return b"%b\r\n%b" % (head, body)

    @staticmethod
    def recorded_now() -> bytes:
        return go_time(time.time_ns()).encode()


class StructuredEncoder:
    """Events as one JSON array of structured CloudEvents (the ``batch`` format)."""

    def __init__(self, url: str, identity: Identity) -> None:
        self.identity = identity
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Content-Type: {BATCH_CONTENT_TYPE}\r\nContent-Length: "
        ).encode("latin-1")

    def request(self, events: Iterable[Event]) -> bytes:
        """The whole HTTP request carrying ``events`` as one batch."""
        body = self.encode(events)
        return b"%b%d\r\n\r\n%b" % (self._head, len(body), body)

    def encode(self, events: Iterable[Event]) -> bytes:
        import orjson

        recorded = go_time(time.time_ns())
        ident = self.identity
        docs: list[dict[str, Any]] = []
        for event in events:
            doc: dict[str, Any] = {
                "specversion": "1.0",
                "id": event.id,
                "type": event.type,
                "source": ident.source,
                "time": go_time(event.time_ns),
                EXT_INFERENCE_SERVICE: ident.inference_service,
                EXT_NAMESPACE: ident.namespace,
                EXT_COMPONENT: ident.component,
                EXT_ENDPOINT: ident.endpoint,
                EXT_METADATA: event.metadata,
                EXT_RECORDED_TIME: recorded,
            }
            if event.content_type:
                doc["datacontenttype"] = event.content_type
            body = body_of(event)
            if _is_json(body, event.content_type, orjson.loads):
                doc["data"] = orjson.Fragment(body)
            else:
                doc["data_base64"] = base64.b64encode(body).decode("ascii")
            docs.append(doc)
        return orjson.dumps(docs)


def _is_json(body: bytes, content_type: str | None, loads: Callable[[bytes], Any]) -> bool:
    """Strict JSON (no NaN literals, no trailing binary tensors, not gzip) with a JSON or no content type."""
    if not body or (content_type and "json" not in content_type.lower()):
        return False
    try:
        loads(body)
    except ValueError:
        return False
    return True
