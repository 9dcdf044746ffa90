"""A stand-in for the feedback store's ``GET /labelled`` (docs/contracts.md, feedback): the same
answer shape and cursor paging, in a thread on a loopback port, serving rows a test gives it."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LabelledStore:
    def __init__(self, rows: list[dict[str, Any]], features: list[str], classes: list[str]) -> None:
        self.rows, self.features, self.classes = rows, features, classes
        self.requests: list[dict[str, list[str]]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                params = urllib.parse.parse_qs(query)
                store.requests.append(params)
                if path != "/labelled":
                    self.send_error(404)
                    return
                limit = int(params.get("limit", ["10000"])[0])
                after = int(params.get("after", ["0"])[0])
                since = float(params.get("since", ["0"])[0])
                chosen = [
                    (i + 1, r)
                    for i, r in enumerate(store.rows)
                    if i + 1 > after and r["predicted_at"] >= since
                ]
                page = chosen[:limit]
                body = json.dumps(
                    {
                        "features": store.features,
                        "classes": store.classes,
                        "count": len(page),
                        "next_after": page[-1][0] if len(page) == limit else None,
                        "rows": [r for _, r in page],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LabelledStore:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)
