"""A FAKE Kubernetes API server for the rollout CLI's tests, in a thread on a loopback port.

Why a fake: no Kubernetes API server (nor kind, k3s, envtest's etcd + kube-apiserver) can run on
this machine, and the CLI's safety rests on the API's semantics, so the fake keeps exactly those the
CLI uses, as the real kube-apiserver has them, and is reached by the real ``kubernetes`` client
over HTTP through a generated kubeconfig:

* ``GET`` of namespaced objects (custom resources under ``/apis/<group>/<version>``, core under
  ``/api/v1``), ``404 NotFound`` with a ``Status`` body for unknown ones;
* ``PATCH`` with ``application/merge-patch+json`` (RFC 7386) and ``application/json-patch+json``
  (RFC 6902: add, remove, replace, move, copy, test); a failed ``test`` or a path that does not
  exist is ``422`` (as the apiserver answers a JSON patch that does not apply); other patch types
  are ``415``;
* optimistic concurrency: every write bumps ``metadata.resourceVersion``; a patch whose result
  carries a ``resourceVersion`` different from the stored one is ``409 Conflict``;
* ``POST`` of core/v1 Events (stored, listed with ``GET``);
* bearer-token auth (``401`` without the kubeconfig's token).

Not faked: watches, list selectors, admission webhooks, server-side apply, field managers.

The patch semantics here are written apart from the product's ``rollout/rollout/patches.py`` (the
RFC 7386 / 6902 code of ``--router local``) on purpose: the fake stands in for the API server, so a
bug in the product's patch code must not be mirrored by the server the tests check it against.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (apiVersion, plural, namespace, name)
TOKEN = "fake-token"

_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?/?$"
)


class PatchError(Exception):
    """A JSON patch that does not apply (the apiserver answers 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("operations on the whole document are not supported")
    node = doc
    for t in tokens[:-1]:
        node = _child(node, t, pointer)
    return node, tokens[-1]


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise PatchError(f"doc is missing path: {pointer!r}")


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for t in _tokens(pointer):
        node = _child(node, t, pointer)
    return node


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"remove operation does not apply: doc is missing path: {pointer!r}")


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"add operation does not apply: index out of range: {pointer!r}")
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: {pointer!r}")


def json_patch(doc: Any, ops: list[Obj]) -> Any:
    """RFC 6902 on a copy of ``doc``."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "test":
            try:
                actual = _get(doc, path)
            except PatchError as e:
                raise PatchError(f"testing value {path} failed: {e}") from e
            if actual != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        elif kind == "add":
            _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            parent, last = _parent(doc, path)
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
        elif kind == "move":
            _add(doc, path, _remove(doc, op["from"]))
        elif kind == "copy":
            _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        else:
            raise PatchError(f"unexpected kind: {kind!r}")
    return doc


class FakeKubeAPI:
    """The fake API server; objects and events are inspected and seeded directly by tests."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.events: list[Obj] = []
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.after_get: Callable[[Key], None] | None = None
        self._rv = 100
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeKubeAPI:
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="fake-kube-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def write_kubeconfig(self, path: Path, namespace: str = "models") -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "sre", "user": {"token": TOKEN}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {"cluster": "fake", "user": "sre", "namespace": namespace},
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    # store ----------------------------------------------------------------------------------
    def next_rv(self) -> str:
        with self._lock:
            self._rv += 1
            return str(self._rv)

    def put(self, obj: Obj, plural: str) -> Obj:
        """Create or replace an object (as another client would), bumping its resourceVersion."""
        with self._lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", f"uid-{meta['name']}")
            meta["resourceVersion"] = self.next_rv()
            self.objects[(obj["apiVersion"], plural, meta["namespace"], meta["name"])] = obj
            return copy.deepcopy(obj)

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> Obj:
        with self._lock:
            return copy.deepcopy(self.objects[(api_version, plural, namespace, name)])

    def edit(
        self, api_version: str, plural: str, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj:
        """A concurrent edit by someone else: change the stored object and bump its resourceVersion."""
        with self._lock:
            obj = self.get(api_version, plural, namespace, name)
            change(obj)
            return self.put(obj, plural)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubeAPI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Obj) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str, name: str = "", kind: str = "") -> None:
        self._send(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "details": {"name": name, "kind": kind},
                "code": code,
            },
        )

    def _route(self) -> tuple[Key, str, str] | None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._status(401, "Unauthorized", "Unauthorized")
            return None
        m = _PATH.match(self.path.split("?", 1)[0])
        if not m:
            self._status(404, "NotFound", f"the server could not find the requested resource ({self.path})")
            return None
        api_version = "v1" if m["core"] else f"{m['group']}/{m['version']}"
        resource = m["plural"] if m["core"] else f"{m['plural']}.{m['group']}"
        return (api_version, m["plural"], m["ns"], m["name"] or ""), resource, m["name"] or ""

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self) -> None:
        routed = self._route()
        if routed is None:
            return
        key, resource, name = routed
        self.fake.requests.append(("GET", self.path, ""))
        if key[1] == "events" and not name:
            with self.fake._lock:
                items = [e for e in self.fake.events if e["metadata"]["namespace"] == key[2]]
            self._send(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": items})
            return
        with self.fake._lock:
            obj = self.fake.objects.get(key)
            obj = copy.deepcopy(obj) if obj is not None else None
        if obj is None:
            self._status(404, "NotFound", f'{resource} "{name}" not found', name, key[1])
            return
        if self.fake.after_get is not None:  # another writer, between this read and the client's
            self.fake.after_get(key)  # next request: before the answer leaves, so never after it
        self._send(200, obj)

    def do_PATCH(self) -> None:
        routed = self._route()
        if routed is None:
            return
        key, resource, name = routed
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        self.fake.requests.append(("PATCH", self.path, ctype))
        body = self._body()
        with self.fake._lock:
            current = self.fake.objects.get(key)
            if current is None:
                self._status(404, "NotFound", f'{resource} "{name}" not found', name, key[1])
                return
            try:
                if ctype == "application/merge-patch+json":
                    result = merge_patch(current, body)
                elif ctype == "application/json-patch+json":
                    if not isinstance(body, list):
                        raise PatchError("a JSON patch must be a list of operations")
                    result = json_patch(current, body)
                else:
                    self._status(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format: {ctype}",
                    )
                    return
            except (PatchError, KeyError, TypeError, ValueError) as e:
                self._status(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: {e}",
                    name,
                    key[1],
                )
                return
            sent_rv = (result.get("metadata") or {}).get("resourceVersion")
            if sent_rv != current["metadata"]["resourceVersion"]:
                self._status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    name,
                    key[1],
                )
                return
            for immutable in ("name", "namespace", "uid"):
                result["metadata"][immutable] = current["metadata"][immutable]
            result["apiVersion"], result["kind"] = current["apiVersion"], current["kind"]
            result["metadata"]["resourceVersion"] = self.fake.next_rv()
            self.fake.objects[key] = result
            self._send(200, copy.deepcopy(result))

    def do_POST(self) -> None:
        routed = self._route()
        if routed is None:
            return
        key, _, name = routed
        self.fake.requests.append(("POST", self.path, self.headers.get("Content-Type") or ""))
        body = self._body()
        if key[1] != "events" or name:
            self._status(405, "MethodNotAllowed", "the fake API only creates events")
            return
        if not isinstance(body, dict) or not (body.get("involvedObject") or {}).get("name"):
            self._status(
                422, "Invalid", "Event is invalid: involvedObject.name: Required value", "", "events"
            )
            return
        meta = body.setdefault("metadata", {})
        meta["namespace"] = key[2]
        meta["resourceVersion"] = self.fake.next_rv()
        with self.fake._lock:
            self.fake.events.append(body)
        self._send(201, body)
