"""The rendered VirtualService's HTTP routes applied the way Envoy applies them, as a loopback
reverse proxy in front of real component processes, and a stand-in for the sidecar's
pilot-agent (``POST /quitquitquit``), so that the ``helm test`` script runs end to end.

Routing: the first route whose ``match`` list matches (``uri.regex`` as an RE2 full match,
``headers.*.exact``; no ``match``: everything), then one destination by weight. Each destination
host (``<isvc>-<component>.<ns>.svc.cluster.local``) maps to a local base URL by its first label.
"""

from __future__ import annotations

import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

__all__ = ["MeshRouter", "PilotAgent", "pick_route"]


def pick_route(vs: dict[str, Any], path: str, headers: dict[str, str]) -> dict[str, Any]:
    def matches(m: dict[str, Any]) -> bool:
        uri = m.get("uri", {})
        if "regex" in uri and not re.fullmatch(uri["regex"], path):
            return False
        return all(headers.get(h.lower()) == cond["exact"] for h, cond in m.get("headers", {}).items())

    routes: list[dict[str, Any]] = vs["spec"]["http"]
    for route in routes:
        if "match" not in route or any(matches(m) for m in route["match"]):
            return route
    raise LookupError(f"no route for {path}")


class _Server:
    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class MeshRouter(_Server):
    """Proxies each request to the local server of the destination its route picks."""

    def __init__(self, vs: dict[str, Any], backends: dict[str, str], seed: int = 0) -> None:
        self.vs, self.backends = vs, backends
        self.routed: list[tuple[str, str, str]] = []  # (path, route name, destination service)
        self._random = random.Random(seed)
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        router = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _proxy(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                route = pick_route(router.vs, self.path.split("?", 1)[0], headers)
                destinations = route["route"]
                weights = [d.get("weight", 100) for d in destinations]
                (chosen,) = router._random.choices(destinations, weights=weights)
                service = chosen["destination"]["host"].split(".")[0]
                router.routed.append((self.path, route["name"], service))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    answer = httpx.request(
                        self.command,
                        router.backends[service] + self.path,
                        content=body or None,
                        headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                        timeout=120.0,
                    )
                    status, content = answer.status_code, answer.content
                    ctype = answer.headers.get("content-type", "application/json")
                except httpx.HTTPError as e:  # what Envoy answers when the upstream is unreachable
                    status, content, ctype = 503, f"upstream connect error: {e}".encode(), "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = _proxy
            do_POST = _proxy

        return Handler


class PilotAgent(_Server):
    """Records ``POST /quitquitquit`` (the pilot-agent exits, the sidecar stops)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                agent.calls.append((self.command, self.path))
                self.send_response(200 if self.path == "/quitquitquit" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
