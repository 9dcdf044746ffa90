"""The rollout tests' fake API server (tests/rollout/fake_kube_api.py) plus what the retraining
trigger uses, with the API's semantics: ``POST`` of Jobs (``409 AlreadyExists`` for a taken name,
``422`` without a name), and lists of Jobs and Pods filtered by a ``labelSelector`` of equality
and existence terms."""

from __future__ import annotations

import copy
import urllib.parse
from typing import Any

from fake_kube_api import FakeKubeAPI, _Handler

Obj = dict[str, Any]


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, eq, value = term.partition("=")
        if not eq:  # a bare key: the label exists, whatever its value
            if key.strip() not in labels:
                return False
        elif labels.get(key.strip()) != value.strip():
            return False
    return True


class FakeBatchAPI(FakeKubeAPI):
    def start(self) -> FakeBatchAPI:
        api = self

        class Handler(_BatchHandler):
            fake = api

        import threading
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
        self._thread.start()
        return self

    def items(self, api_version: str, plural: str) -> list[Obj]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (v, p, _, _), o in self.objects.items()
                if (v, p) == (api_version, plural)
            ]


class _BatchHandler(_Handler):
    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        routed = None if self.headers.get("Authorization") is None else True
        if routed and path.rstrip("/").endswith(("/jobs", "/pods")):
            key = self._route()
            if key is None:
                return
            (api_version, plural, ns, _), _, _ = key
            selector = urllib.parse.parse_qs(query).get("labelSelector", [""])[0]
            with self.fake._lock:
                items = [
                    copy.deepcopy(o)
                    for (v, p, n, _), o in self.fake.objects.items()
                    if (v, p, n) == (api_version, plural, ns)
                    and _matches(o["metadata"].get("labels") or {}, selector)
                ]
            self.fake.requests.append(("GET", self.path, ""))
            self._send(200, {"kind": "List", "apiVersion": api_version, "metadata": {}, "items": items})
            return
        super().do_GET()

    def do_POST(self) -> None:
        if not self.path.split("?", 1)[0].rstrip("/").endswith("/jobs"):
            super().do_POST()
            return
        key = self._route()
        if key is None:
            return
        (api_version, plural, ns, _), _, _ = key
        self.fake.requests.append(("POST", self.path, self.headers.get("Content-Type") or ""))
        body = self._body()
        name = ((body or {}).get("metadata") or {}).get("name")
        if not name:
            self._status(422, "Invalid", "Job.batch is invalid: metadata.name: Required value", "", "jobs")
            return
        with self.fake._lock:
            if (api_version, plural, ns, name) in self.fake.objects:
                self._status(409, "AlreadyExists", f'jobs.batch "{name}" already exists', name, "jobs")
                return
            body["metadata"]["namespace"] = ns
            created = self.fake.put(body, plural)
        self._send(201, created)
