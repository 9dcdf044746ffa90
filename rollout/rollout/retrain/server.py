"""The trigger's HTTP face (stdlib server, one thread per request; bodies bounded).

* ``POST /alertmanager``: an Alertmanager webhook (version 4);
* ``POST /`` or ``/events``: the drift detector's CloudEvent (binary or structured mode);
* ``GET /status`` (JSON: current run, last decision, counters), ``GET /metrics``, ``GET /healthz``.

Answers: ``202`` a run started, ``200`` nothing to do (``duplicate`` while a run is going,
``ignored`` for other alerts), ``400`` a body we cannot read (the field named), ``413`` too big.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import KubeError
from .alerts import PayloadError, from_alertmanager, from_cloudevent
from .trigger import Trigger

__all__ = ["MAX_BODY", "TriggerServer"]

MAX_BODY = 1 << 20
log = logging.getLogger("rollout.retrain")


class TriggerServer:
    def __init__(self, trigger: Trigger, alerts: frozenset[str], host: str, port: int) -> None:
        outer = self

        class Handler(_Handler):
            owner = outer

        self.trigger, self.alerts = trigger, alerts
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> TriggerServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.trigger.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: TriggerServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.owner.trigger.metrics().encode(), "text/plain; version=0.0.4")
        elif path == "/status":
            self._json(200, self.owner.trigger.status())
        elif path in ("/healthz", "/readyz"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"error": f"no route GET {path}"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/alertmanager", "/", "/events"):
            self._json(404, {"error": f"no route POST {path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._json(400, {"error": "'Content-Length' must be an integer"})
            return
        if length > MAX_BODY:
            self._json(413, {"error": f"body of {length} bytes is over {MAX_BODY}"})
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
            if path == "/alertmanager":
                reasons = from_alertmanager(body, self.owner.alerts)
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                reasons = from_cloudevent(headers, body)
        except (ValueError, PayloadError) as e:
            self._json(400, {"error": f"cannot read the notification: {e}"})
            return
        try:
            answer = self.owner.trigger.notify(reasons)
        except KubeError as e:
            log.error("cannot start a run: %s", e)
            self._json(503, {"error": f"cannot start a run: {e}"})
            return
        self._json(202 if answer["outcome"] == "started" else 200, answer)
