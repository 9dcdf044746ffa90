"""The local router's gateway: the VirtualService of ``make up`` kept in a file, with the API's semantics.

``make up`` (``manifests/local``) renders the chart's VirtualService into a YAML file and describes
itself in ``<stack>/stack.json``; a watcher there translates every revision of the file into
Envoy routes. This gateway stands where :class:`rollout.kube.KubeGateway` stands for a cluster,
so the router, ``run`` and every command work unchanged:

* ``get``: the VirtualService from the file (404 when the name differs), or an InferenceService
  whose ``Ready`` condition comes from probing its local components' readiness URLs;
* ``patch``: merge patch or JSON patch under an exclusive lock, with the API server's optimistic
  concurrency: a ``resourceVersion`` other than the stored one is a 409, a failed JSON-patch
  ``test`` a conflict; each write bumps ``resourceVersion`` and replaces the file atomically
  (write aside, rename), which is what the watcher and Envoy rely on;
* ``record_event``: one JSON line per Event in ``events.jsonl`` beside the file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .errors import ConflictError, InvalidError, KubeUnavailableError, NotFoundError
from .kube import ISTIO, KSERVE, Resource
from .patches import PatchError, PatchTestFailed, json_patch, merge_patch

__all__ = ["LocalGateway", "LocalStack", "connect_local"]

Obj = dict[str, Any]
STACK_FILE = "stack.json"


class LocalStack:
    """``<stack>/stack.json`` as written by ``make up``: names, the VirtualService file, URLs."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        path = self.directory / STACK_FILE
        try:
            self.data: Obj = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise KubeUnavailableError(
                f"no local stack at {self.directory} ({path} is missing): start it with `make up`, "
                "or point --local-stack at its state folder"
            ) from e
        except (OSError, ValueError) as e:
            raise KubeUnavailableError(f"cannot read the local stack description {path}: {e}") from e

    def get(self, key: str) -> Any:
        return self.data.get(key)

    @property
    def namespace(self) -> str:
        return str(self.data.get("namespace", "default"))

    @property
    def virtual_service_file(self) -> Path:
        return Path(self.data["virtualService"]["file"])

    @property
    def virtual_service_name(self) -> str:
        return str(self.data["virtualService"]["name"])


def _probe(url: str) -> str | None:
    """None when ``url`` answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as r:
            return None if r.status == 200 else f"{url} answered {r.status}"
    except urllib.error.HTTPError as e:
        return f"{url} answered {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return f"{url} unreachable ({getattr(e, 'reason', e)})"


class LocalGateway:
    """Get and patch the local VirtualService file; InferenceService readiness from local probes."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.namespace = stack.namespace
        self.path = stack.virtual_service_file
        self.events = self.path.with_name("events.jsonl")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, name: str) -> Obj:
        try:
            obj = yaml.safe_load(self.path.read_text())
        except FileNotFoundError as e:
            raise NotFoundError(f"{ISTIO.describe(name)} not found: {self.path} does not exist", 404) from e
        except yaml.YAMLError as e:
            raise InvalidError(f"{self.path} is not valid YAML: {e}", 422) from e
        if not isinstance(obj, dict) or obj.get("kind") != "VirtualService":
            raise InvalidError(f"{self.path} does not hold a VirtualService", 422)
        if (obj.get("metadata") or {}).get("name") != name:
            found = (obj.get("metadata") or {}).get("name")
            raise NotFoundError(f"{ISTIO.describe(name)} not found: {self.path} holds {found!r}", 404)
        return obj

    def get(self, kind: Resource, name: str) -> Obj:
        if kind is KSERVE:
            return self._inference_service(name)
        if kind is not ISTIO:
            raise NotFoundError(f"{kind.describe(name)} not found: the local stack has no {kind.plural}", 404)
        with self._locked():
            return self._read(name)

    def patch(self, kind: Resource, name: str, patch: Obj | list[Obj]) -> Obj:
        if kind is not ISTIO:
            raise InvalidError(f"the local stack cannot patch {kind.describe(name)}", 405)
        what = ISTIO.describe(name)
        with self._locked():
            current = self._read(name)
            stored_rv = str(current["metadata"].get("resourceVersion", "0"))
            try:
                patched = (
                    json_patch(current, patch) if isinstance(patch, list) else merge_patch(current, patch)
                )
            except PatchTestFailed as e:
                raise ConflictError(
                    f"{what} no longer has the weights this change was computed from (JSON-patch test "
                    f"failed: {e}); nothing was written. Re-run the command to act on the current state.",
                    422,
                ) from e
            except PatchError as e:
                raise InvalidError(f"the change to {what} does not apply: {e}", 422) from e
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
                raise InvalidError(f"the change to {what} would leave no metadata", 422)
            result: Obj = patched
            sent_rv = str((result.get("metadata") or {}).get("resourceVersion", stored_rv))
            if sent_rv != stored_rv:
                raise ConflictError(
                    f"{what} was changed by someone else since it was read (resourceVersion {sent_rv} "
                    f"expected, {stored_rv} stored); nothing was written. "
                    "Re-run the command to act on the current state.",
                    409,
                )
            result["metadata"]["resourceVersion"] = str(int(stored_rv) + 1 if stored_rv.isdigit() else 1)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(yaml.safe_dump(result, sort_keys=False))
            os.replace(tmp, self.path)
            return result

    def record_event(self, involved: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        meta = involved.get("metadata") or {}
        event = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "message": message[:1024],
            "involvedObject": {"kind": involved.get("kind"), "name": meta.get("name")},
            "resourceVersion": meta.get("resourceVersion"),
            "source": "rollout",
        }
        with open(self.events, "a") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")

    def _inference_service(self, name: str) -> Obj:
        isvcs = self.stack.get("inferenceServices") or {}
        if name not in isvcs:
            raise NotFoundError(
                f"{KSERVE.describe(name)} not found in the local stack ({', '.join(isvcs)})", 404
            )
        problems = [p for p in (_probe(u) for u in isvcs[name].get("ready", [])) if p]
        condition = {"type": "Ready", "status": "False" if problems else "True"}
        if problems:
            condition["message"] = "; ".join(problems)
        return {"kind": "InferenceService", "metadata": {"name": name}, "status": {"conditions": [condition]}}


@contextmanager
def connect_local(directory: str | os.PathLike[str]) -> Iterator[LocalGateway]:
    """The gateway of the local stack whose state folder is ``directory``."""
    yield LocalGateway(LocalStack(directory))
