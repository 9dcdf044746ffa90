"""A Kubernetes API server just large enough for Helm's ``lookup`` (``helm template --dry-run=server``):
version, legacy discovery of core/v1 and ``networking.istio.io/v1``, and GET of stored objects
(404 ``Status`` otherwise). Loopback only; started and stopped by the test that uses it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

# (group, version) -> [(plural, kind)]: every kind the chart renders, all namespaced
KINDS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("", "v1"): [
        ("services", "Service"),
        ("serviceaccounts", "ServiceAccount"),
        ("configmaps", "ConfigMap"),
        ("persistentvolumeclaims", "PersistentVolumeClaim"),
        ("pods", "Pod"),
        ("events", "Event"),
    ],
    ("apps", "v1"): [("deployments", "Deployment")],
    ("batch", "v1"): [("cronjobs", "CronJob"), ("jobs", "Job")],
    ("rbac.authorization.k8s.io", "v1"): [("roles", "Role"), ("rolebindings", "RoleBinding")],
    ("networking.k8s.io", "v1"): [("networkpolicies", "NetworkPolicy")],
    ("networking.istio.io", "v1"): [
        ("virtualservices", "VirtualService"),
        ("destinationrules", "DestinationRule"),
        ("gateways", "Gateway"),
    ],
    ("security.istio.io", "v1"): [
        ("authorizationpolicies", "AuthorizationPolicy"),
        ("peerauthentications", "PeerAuthentication"),
        ("requestauthentications", "RequestAuthentication"),
    ],
    ("serving.kserve.io", "v1beta1"): [("inferenceservices", "InferenceService")],
    ("monitoring.coreos.com", "v1"): [("podmonitors", "PodMonitor"), ("prometheusrules", "PrometheusRule")],
}


def _discovery() -> dict[str, Obj]:
    docs: dict[str, Obj] = {
        "/version": {"major": "1", "minor": "35", "gitVersion": "v1.35.0", "platform": "linux/amd64"},
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    }
    groups = []
    for (group, version), kinds in KINDS.items():
        group_version = f"{group}/{version}" if group else version
        resources = [
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": True,
                "kind": kind,
                "verbs": ["get", "list"],
            }
            for plural, kind in kinds
        ]
        path = f"/apis/{group_version}" if group else "/api/v1"
        docs[path] = {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }
        if group:
            gv = {"groupVersion": group_version, "version": version}
            groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    docs["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    return docs


_DISCOVERY = _discovery()


class FakeAPI:
    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}  # request path -> object
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                fake.requests.append(path)
                body = _DISCOVERY.get(path) or fake.objects.get(path)
                code = 200
                if body is None:
                    code = 404
                    body = {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                    }
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def put_virtual_service(self, obj: Obj) -> None:
        meta = obj["metadata"]
        path = f"/apis/networking.istio.io/v1/namespaces/{meta['namespace']}/virtualservices/{meta['name']}"
        self.objects[path] = obj

    def start(self) -> FakeAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def write_kubeconfig(self, path: Path) -> Path:
        host, port = "127.0.0.1", self._server.server_address[1]
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": f"http://{host}:{port}"}}],
                    "users": [{"name": "fake", "user": {"token": "fake"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                    "current-context": "fake",
                }
            )
        )
        path.chmod(0o600)
        return path
