"""KServe's agent logger, byte for byte: the HTTP requests its Go code writes, replayed on a socket.

What ``pkg/logger`` (kserve/kserve) and the CloudEvents Go SDK (``protocol/http``) put on the wire
for one logged request or response (binary content mode):

* the agent logs the request before proxying it, and the response only when the status was 200;
  both events carry the request's ``Ce-Id`` header (else a new uuid) and the *request's*
  ``Content-Type`` (absent when the request had none, e.g. a GET), body = the bytes as they were
  (a gzip-compressed request stays compressed: ``Content-Encoding`` is not copied);
* header names are Go's canonical ``Ce-*`` forms, and Go's ``net/http`` writes ``Host``,
  ``User-Agent: Go-http-client/1.1``, ``Content-Length``, then the headers sorted by name, then
  ``Accept-Encoding: gzip``;
* ``Ce-Time`` (request arrival or response time) and ``Ce-Recordedtime`` (when sent) are RFC 3339
  with nanoseconds in UTC, trailing zeros trimmed (Go's ``time.RFC3339Nano``); ``Ce-Source`` is
  ``http://localhost:9081/`` (the agent's port); ``Ce-Endpoint`` is empty; ``Ce-Metadata`` is the
  JSON of the headers listed in ``logger.metadataHeaders`` (Go canonical names, value lists):
  ``{}`` or ``{"X-Model-Serving-Caller":["explainer"]}``.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE

AGENT_SOURCE = "http://localhost:9081/"


def go_time(at: datetime | None = None) -> str:
    """``t.UTC().Format(time.RFC3339Nano)``: nanoseconds, trailing zeros trimmed."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    base = at.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{at.microsecond:06d}000".rstrip("0")
    return base + (f".{fraction}" if fraction else "") + "Z"


@dataclass
class Agent:
    """One InferenceService's agent: which extensions it writes and where it posts."""

    host: str
    port: int
    inference_service: str
    namespace: str = "default"
    component: str = "predictor"
    metadata_headers: tuple[str, ...] = ()
    """``logger.metadataHeaders`` as the chart sets them (matched against Go's canonical names)."""
    sent: list[bytes] = field(default_factory=list)

    def event(
        self,
        kind: str,
        event_id: str,
        body: bytes,
        content_type: str | None,
        request_headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The raw HTTP request the agent writes for one event."""
        metadata = {
            _canonical(name): [value]
            for name, value in (request_headers or {}).items()
            if _canonical(name) in self.metadata_headers
        }
        ce = {
            "Ce-Component": self.component,
            "Ce-Endpoint": "",
            "Ce-Id": event_id,
            "Ce-Inferenceservicename": self.inference_service,
            "Ce-Metadata": json.dumps(metadata, separators=(",", ":")),
            "Ce-Namespace": self.namespace,
            "Ce-Recordedtime": go_time(),
            "Ce-Source": AGENT_SOURCE,
            "Ce-Specversion": "1.0",
            "Ce-Time": go_time(),
            "Ce-Type": REQUEST_TYPE if kind == "request" else RESPONSE_TYPE,
        }
        if content_type:
            ce["Content-Type"] = content_type
        lines = [
            "POST / HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "User-Agent: Go-http-client/1.1",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in sorted(ce.items())),
            "Accept-Encoding: gzip",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def exchange(
        self,
        body: bytes,
        *,
        status: int,
        response: bytes = b"",
        content_type: str | None = "application/json",
        request_headers: Mapping[str, str] | None = None,
        event_id: str | None = None,
    ) -> list[bytes]:
        """The events the agent sends for one proxied request answered ``status``."""
        rid = event_id or str(uuid.uuid4())
        events = [self.event("request", rid, body, content_type, request_headers)]
        if status == 200:
            events.append(self.event("response", rid, response, content_type, request_headers))
        return events


def _canonical(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def replay(host: str, port: int, requests: list[bytes], timeout: float = 10.0) -> list[tuple[int, bytes]]:
    """Send the raw requests on one keep-alive connection; the (status, body) of each answer."""
    answers: list[tuple[int, bytes]] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        for request in requests:
            sock.sendall(request)
            status_line = reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            answers.append((status, reader.read(length)))
    return answers
