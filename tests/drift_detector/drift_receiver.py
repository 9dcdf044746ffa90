"""A sink on a loopback port that records what it is sent (stdlib only, both virtualenvs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support import free_port

WINDOW = 100
"""DRIFT_WINDOW_SIZE of the shared detector."""
WATCHED = ["shift", "calm", "income", "income-canary", "bad", "logger", "predictor-e2e", "transformer-e2e"]
"""DRIFT_INFERENCE_SERVICES of the shared detector: anything else is a 400."""


@dataclass
class Receiver:
    url: str
    delay: float = 0.0
    status: int = 202
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def wait_for(self, n: int, timeout: float = 10.0, **headers: str) -> list[tuple[dict[str, str], bytes]]:
        """The requests whose headers match, once there are ``n`` of them (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [(h, b) for h, b in list(self.received) if all(h.get(k) == v for k, v in headers.items())]
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.02)


@contextmanager
def receiving(delay: float = 0.0, status: int = 202) -> Iterator[Receiver]:
    """Serve on a free port; each POST is recorded, answered ``status`` after ``delay`` seconds."""
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}/", delay=delay, status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)))
            if box.delay:
                time.sleep(box.delay)
            self.send_response(box.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
