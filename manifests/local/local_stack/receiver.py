"""The local notification receiver: the drift detector's sink and Alertmanager's webhook.

``POST <any path>`` stores the delivery (path, CloudEvent headers, JSON body) and answers 200;
``GET /deliveries[?path=/drift]`` lists them (newest last, at most ``MAX_KEPT``); ``GET /healthz``.
Standard library only, one thread per request, bounded memory.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["MAX_KEPT", "serve"]

MAX_KEPT = 1000
MAX_BODY = 4 * 1024 * 1024
log = logging.getLogger("local_stack.receiver")
_lock = threading.Lock()
_deliveries: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif url.path == "/deliveries":
            only = parse_qs(url.query).get("path")
            with _lock:
                items = [d for d in _deliveries if not only or d["path"] in only]
            self._send(200, {"deliveries": items})
        else:
            self._send(404, {"error": f"no route {url.path}: GET /deliveries or /healthz, POST anything"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": f"body larger than {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        delivery = {
            "path": urlsplit(self.path).path,
            "received": time.time(),
            "headers": {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("ce-")},
            "contentType": self.headers.get("Content-Type"),
            "body": body,
        }
        with _lock:
            _deliveries.append(delivery)
        log.info("delivery on %s (%d bytes)", delivery["path"], len(raw))
        self._send(200, {"stored": True})


def serve(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    log.info("receiver on http://127.0.0.1:%d (GET /deliveries)", port)
    server.serve_forever()
