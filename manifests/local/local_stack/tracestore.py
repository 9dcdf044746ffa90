"""The local trace store: an OTLP/HTTP receiver that keeps the last traces (the stack's "Jaeger").

* ``POST /v1/traces``: an OTLP export (protobuf or JSON, optionally gzip; :mod:`.otlp`); 200 with
  an empty ``ExportTraceServiceResponse`` in the request's encoding, or 400 / 413 / 415 with a
  ``google.rpc.Status`` (protobuf or JSON, as OTLP/HTTP says) whose ``message`` names the problem.
* ``GET /traces[?limit=N]``: summaries, newest first (by the trace's first span's start).
* ``GET /traces/{trace_id}``: one trace with all its spans (404 when it is not kept).
* ``GET /healthz``.

Memory is bounded: the newest ``keep`` traces (by arrival of their latest span), at most
``MAX_SPANS`` spans each and ``MAX_TOTAL_SPANS`` in all (the oldest traces go first). Every span
is also appended as one JSON line to ``traces.jsonl`` (rotated once to ``traces.jsonl.1`` beyond
``MAX_FILE_BYTES``). Standard library HTTP, one thread per request.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .otlp import JSON, MAX_BODY, PROTOBUF, OtlpError, Span, decode

__all__ = ["MAX_SPANS", "TraceStore", "serve", "summary"]

MAX_SPANS = 10_000
MAX_TOTAL_SPANS = 200_000
MAX_FILE_BYTES = 64 * 1024 * 1024
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
INVALID_ARGUMENT = 3
log = logging.getLogger("local_stack.tracestore")


def summary(trace_id: str, spans: list[Span], dropped: int = 0, quiet: float = 0.0) -> dict[str, Any]:
    """What ``GET /traces`` lists for one trace: ids, services, root span, start and duration;
    ``quietSeconds``: since its latest span arrived (spans of one trace come from several processes,
    each exporting about a second after a span ends: a trace quiet for 1.5 s is complete)."""
    ids = {s["spanId"] for s in spans}
    roots = sorted((s for s in spans if s["parentSpanId"] not in ids), key=lambda s: s["startNs"])
    start = min(s["startNs"] for s in spans)
    return {
        "traceId": trace_id,
        "root": f"{roots[0]['service']}: {roots[0]['name']}" if roots else "",
        "services": sorted({s["service"] for s in spans}),
        "spanCount": len(spans),
        "droppedSpans": dropped,
        "startNs": start,
        "start": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start / 1e9))
        + f".{start // 1_000_000 % 1000:03d}Z",
        "durationMs": (max(s["endNs"] for s in spans) - start) / 1e6,
        "quietSeconds": round(quiet, 3),
    }


class TraceStore:
    """The newest ``keep`` traces in memory, every span appended to ``path`` (when given)."""

    def __init__(self, keep: int, path: Path | None = None) -> None:
        self.keep = keep
        self.path = path
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()
        self._dropped: dict[str, int] = {}
        self._received: dict[str, float] = {}
        self._total = 0

    def add(self, spans: list[Span]) -> None:
        now = time.monotonic()
        with self._lock:
            for span in spans:
                trace_id = span["traceId"]
                kept = self._traces.setdefault(trace_id, [])
                self._traces.move_to_end(trace_id)
                self._received[trace_id] = now
                if len(kept) < MAX_SPANS:
                    kept.append(span)
                    self._total += 1
                else:
                    self._dropped[trace_id] = self._dropped.get(trace_id, 0) + 1
            while len(self._traces) > self.keep or self._total > MAX_TOTAL_SPANS:
                old, gone = self._traces.popitem(last=False)
                self._total -= len(gone)
                self._dropped.pop(old, None)
                self._received.pop(old, None)
            self._append(spans)

    def _append(self, spans: list[Span]) -> None:
        if self.path is None or not spans:
            return
        try:
            if self.path.exists() and self.path.stat().st_size > MAX_FILE_BYTES:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            with self.path.open("a") as f:
                f.writelines(json.dumps(s, separators=(",", ":")) + "\n" for s in spans)
        except OSError as e:  # the file is a convenience: the store keeps serving
            log.warning("cannot append to %s: %s", self.path, e)

    def summaries(self, limit: int) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            items = [
                (t, list(s), self._dropped.get(t, 0), now - self._received[t])
                for t, s in self._traces.items()
            ]
        found = [summary(*item) for item in items]
        return sorted(found, key=lambda x: x["startNs"], reverse=True)[:limit]

    def get(self, trace_id: str) -> dict[str, Any] | None:
        with self._lock:
            spans = list(self._traces.get(trace_id, []))
            dropped = self._dropped.get(trace_id, 0)
            quiet = time.monotonic() - self._received.get(trace_id, 0.0)
        if not spans:
            return None
        return {
            **summary(trace_id, spans, dropped, quiet),
            "spans": sorted(spans, key=lambda s: s["startNs"]),
        }


def _handler(store: TraceStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, data: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, code: int, body: Any) -> None:
            self._send(code, json.dumps(body).encode(), JSON)

        def _status(self, code: int, message: str, protobuf: bool) -> None:
            """An OTLP error answer: ``google.rpc.Status`` in the request's encoding."""
            if protobuf:
                status = Status(code=INVALID_ARGUMENT, message=message)
                self._send(code, status.SerializeToString(), PROTOBUF)
            else:
                self._json(code, {"code": INVALID_ARGUMENT, "message": message})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self._json(200, {"status": "ok"})
            elif url.path == "/traces":
                raw = parse_qs(url.query).get("limit", ["20"])[-1]
                if not raw.isdigit() or not 1 <= int(raw) <= store.keep:
                    self._json(400, {"error": f"limit={raw!r}: expected an integer from 1 to {store.keep}"})
                    return
                self._json(200, {"traces": store.summaries(int(raw))})
            elif url.path.startswith("/traces/"):
                trace_id = url.path.removeprefix("/traces/").lower()
                if not _TRACE_ID.fullmatch(trace_id):
                    self._json(400, {"error": f"trace id {trace_id!r}: expected 32 hex digits"})
                    return
                trace = store.get(trace_id)
                if trace is None:
                    kept = f"the newest {store.keep} are kept"
                    self._json(404, {"error": f"trace {trace_id} is not in the store ({kept})"})
                else:
                    self._json(200, trace)
            else:
                routes = "GET /traces, /traces/ID, /healthz; POST /v1/traces"
                self._json(404, {"error": f"no route {url.path}: {routes}"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            protobuf = self.headers.get("Content-Type", "").split(";")[0].strip().lower() == PROTOBUF
            if path != "/v1/traces":
                self._json(404, {"error": f"no route POST {path}: OTLP traces go to POST /v1/traces"})
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._status(411, f"Content-Length {length!r}: expected the body's length in bytes", protobuf)
                return
            if int(length) > MAX_BODY:
                self._status(413, f"body of {length} bytes: expected at most {MAX_BODY}", protobuf)
                return
            body = self.rfile.read(int(length))
            try:
                spans = decode(
                    body, self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding", "")
                )
            except OtlpError as e:
                log.warning("refused an export: %s", e)
                self._status(e.status, str(e), protobuf)
                return
            store.add(spans)
            if protobuf:
                self._send(200, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)
            else:
                self._json(200, {})

        def do_PUT(self) -> None:
            self._json(405, {"error": "method not allowed: POST /v1/traces, GET /traces"})

        do_DELETE = do_PATCH = do_PUT

    return Handler


def serve(port: int, keep: int, path: Path | None) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(TraceStore(keep, path)))
    server.daemon_threads = True
    log.info("trace store on http://127.0.0.1:%d (POST /v1/traces, GET /traces), spans to %s", port, path)
    server.serve_forever()
