"""The one module that talks to the Kubernetes API (official ``kubernetes`` client).

Everything above it (router, progressive delivery, CLI) works on plain dicts and the typed
errors of :mod:`rollout.errors`; no other module imports ``kubernetes``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    KubeError,
    KubeUnavailableError,
    NotFoundError,
)

__all__ = ["ISTIO", "KSERVE", "KubeGateway", "Resource", "connect"]

Obj = dict[str, Any]
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class Resource:
    """A custom resource kind: API group, version, plural and a name for messages."""

    def __init__(self, group: str, version: str, plural: str) -> None:
        self.group, self.version, self.plural = group, version, plural

    def describe(self, name: str) -> str:
        return f'{self.plural}.{self.group} "{name}"'


ISTIO = Resource("networking.istio.io", "v1", "virtualservices")
KSERVE = Resource("serving.kserve.io", "v1beta1", "inferenceservices")


def _message(e: ApiException) -> str:
    try:
        body = json.loads(e.body or "")
        return str(body.get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason or e.body)


def _translate(e: ApiException, what: str, *, patch_with_tests: bool = False) -> KubeError:
    status = int(e.status or 0)
    msg = _message(e)
    if status == 404:
        return NotFoundError(f"{what} not found: {msg}", status)
    if status == 409:
        return ConflictError(
            f"{what} was changed by someone else since it was read ({msg}); nothing was written. "
            "Re-run the command to act on the current state.",
            status,
        )
    if status == 422 and patch_with_tests and "test" in msg.lower():
        return ConflictError(
            f"{what} no longer has the weights this change was computed from (JSON-patch test failed: "
            f"{msg}); nothing was written. Re-run the command to act on the current state.",
            status,
        )
    if status in (400, 422):
        return InvalidError(f"the API rejected the change to {what}: {msg}", status)
    if status in (401, 403):
        return ForbiddenError(f"not allowed to access {what}: {msg}", status)
    return KubeError(f"Kubernetes API error {status} on {what}: {msg}", status)


def _as_obj(obj: object) -> Obj:
    if not isinstance(obj, dict):
        raise KubeError(f"unexpected answer from the Kubernetes API: {type(obj).__name__}")
    return obj


class KubeGateway:
    """Get and patch custom objects, and record Events, in one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self._api_client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    @property
    def api_client(self) -> client.ApiClient:
        """The client this gateway talks through (for typed APIs such as ``BatchV1Api``)."""
        return self._api_client

    def call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        """``method(*args, **kwargs)`` of a typed API on :attr:`api_client`, its errors typed as
        :meth:`get`'s (``what`` names the object in messages); the answer's JSON as a dict."""
        try:
            response = method(*args, _preload_content=False, **kwargs)
        except ApiException as e:
            raise _translate(e, what) from e
        except urllib3.exceptions.HTTPError as e:
            raise KubeUnavailableError(f"Kubernetes API unreachable: {e}") from e
        try:
            data = json.loads(response.data)
        except ValueError as e:
            raise KubeError(f"unexpected answer from the Kubernetes API for {what}: not JSON") from e
        return _as_obj(data)

    def get(self, kind: Resource, name: str) -> Obj:
        try:
            obj = self._custom.get_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, name
            )
        except ApiException as e:
            raise _translate(e, kind.describe(name)) from e
        except urllib3.exceptions.HTTPError as e:
            raise KubeUnavailableError(f"Kubernetes API unreachable: {e}") from e
        return _as_obj(obj)

    def patch(self, kind: Resource, name: str, patch: Obj | list[Obj]) -> Obj:
        """Merge patch (a dict) or JSON patch (a list of ops); returns the object as written."""
        json_patch = isinstance(patch, list)
        try:
            obj = self._custom.patch_namespaced_custom_object(
                kind.group,
                kind.version,
                self.namespace,
                kind.plural,
                name,
                patch,
                _content_type=JSON_PATCH if json_patch else MERGE_PATCH,
            )
        except ApiException as e:
            raise _translate(e, kind.describe(name), patch_with_tests=json_patch) from e
        except urllib3.exceptions.HTTPError as e:
            raise KubeUnavailableError(f"Kubernetes API unreachable: {e}") from e
        return _as_obj(obj)

    def record_event(self, involved: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        """A core/v1 Event on ``involved`` (source component ``rollout``)."""
        meta = involved.get("metadata", {})
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta.get('name', 'rollout')}.{uuid.uuid4().hex[:12]}", namespace=self.namespace
            ),
            involved_object=client.V1ObjectReference(
                api_version=involved.get("apiVersion"),
                kind=involved.get("kind"),
                name=meta.get("name"),
                namespace=self.namespace,
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component="rollout"),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            reporting_component="rollout",
            reporting_instance=socket.gethostname(),
        )
        try:
            self._core.create_namespaced_event(self.namespace, event)
        except ApiException as e:
            raise _translate(e, f'events in namespace "{self.namespace}"') from e
        except urllib3.exceptions.HTTPError as e:
            raise KubeUnavailableError(f"Kubernetes API unreachable: {e}") from e


@contextmanager
def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Iterator[KubeGateway]:
    """A gateway from kubeconfig, or in-cluster config when no kubeconfig is given and we run in a pod.

    The namespace defaults to the kubeconfig context's namespace, then the pod's, then ``default``.
    """
    cfg = client.Configuration()
    ns = namespace
    try:
        if kubeconfig:
            raise config.ConfigException("a kubeconfig was given")
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        if not ns and os.path.exists(SERVICE_ACCOUNT_NAMESPACE):
            with open(SERVICE_ACCOUNT_NAMESPACE) as f:
                ns = f.read().strip()
    except config.ConfigException:
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
            contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=kubeconfig
            )
        except (config.ConfigException, OSError) as e:
            raise KubeUnavailableError(f"no usable Kubernetes configuration: {e}") from e
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
        ns = ns or (chosen or {}).get("context", {}).get("namespace")
    cfg.retries = 1
    api_client = client.ApiClient(cfg)
    try:
        yield KubeGateway(api_client, ns or "default")
    finally:
        api_client.close()  # type: ignore[no-untyped-call]
