"""A recording receiver on a loopback port: every POST with its header lines in wire order.

What payload loggers and the drift detector's sink post to in tests. HTTP/1.1 with keep-alive (so
the logger's pipelining is exercised), stdlib only (both virtualenvs import it). ``status`` and
``delay`` make it a failing or slow receiver; ``batch`` bodies are split into their events.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support import free_port

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


@dataclass
class Post:
    path: str
    lines: list[tuple[str, str]]
    """Header lines exactly as received: names as written, in wire order."""
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.lines}


@dataclass
class Event:
    """One CloudEvent, from a binary-mode POST or one entry of a batch."""

    attributes: dict[str, str]
    body: bytes

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def id(self) -> str:
        return self.attributes["id"]


@dataclass
class Recorder:
    url: str
    status: int = 200
    delay: float = 0.0
    posts: list[Post] = field(default_factory=list)

    @property
    def received(self) -> list[tuple[dict[str, str], bytes]]:
        """Every POST as (lower-cased headers, body), in arrival order."""
        return [(post.headers, post.body) for post in list(self.posts)]

    def wait_for(self, n: int, timeout: float = 10.0, **headers: str) -> list[tuple[dict[str, str], bytes]]:
        """The POSTs whose headers match ``headers`` (lower-case names), once there are ``n`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [(h, b) for h, b in self.received if all(h.get(k) == v for k, v in headers.items())]
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def events(self) -> list[Event]:
        out: list[Event] = []
        for post in list(self.posts):
            h = post.headers
            if h.get("content-type") == "application/cloudevents-batch+json":
                for doc in json.loads(post.body):
                    if "data_base64" in doc:
                        body = base64.b64decode(doc["data_base64"])
                    else:
                        body = json.dumps(doc["data"]).encode()
                    attrs = {k: v for k, v in doc.items() if k not in ("data", "data_base64")}
                    out.append(Event({k: str(v) for k, v in attrs.items()}, body))
            else:
                attrs = {k[3:]: v for k, v in h.items() if k.startswith("ce-")}
                if "content-type" in h:
                    attrs["datacontenttype"] = h["content-type"]
                out.append(Event(attrs, post.body))
        return out

    def wait_events(self, n: int, timeout: float = 15.0) -> list[Event]:
        """The events, once there are at least ``n`` (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.events()
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


@contextmanager
def recording(status: int = 200, delay: float = 0.0) -> Iterator[Recorder]:
    port = free_port()
    box = Recorder(f"http://127.0.0.1:{port}/", status=status, delay=delay)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            box.posts.append(Post(self.path, list(self.headers.raw_items()), body))
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
