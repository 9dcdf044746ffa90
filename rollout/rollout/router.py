"""The router: stable/canary weights on the Istio VirtualService, read and written as guarded patches.

Interface after Flagger's ``pkg/router``: :meth:`IstioRouter.get_routes` returns the current
:class:`Routes` (weights, hosts, the object's ``resourceVersion`` and annotations), and
:meth:`IstioRouter.set_routes` writes new weights computed from exactly that read:

* ``merge`` (default): a JSON merge patch that carries ``metadata.resourceVersion`` of the read, so
  the API server answers 409 Conflict if anything changed the object in between;
* ``json``: a JSON patch whose ``test`` ops check the route name, both destination hosts and both
  weights as read, so only a concurrent change of the routing fails (422, reported as a conflict).

The VirtualService must have an http route named ``primary`` (``--route``) with exactly two
destinations, one the stable and one the canary service. A destination is the stable one when its
host contains ``--stable-host``, or, without it, when the host's first DNS label is the stable
InferenceService name, optionally followed by ``-predictor`` or ``-transformer``; same for canary.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import RoutesError
from .gateway import Gateway
from .kube import ISTIO

__all__ = ["ANNOTATION_PREFIX", "DECISION_ANNOTATION", "IstioRouter", "Routes", "Weights"]

ANNOTATION_PREFIX = "rollout.model-serving"
DECISION_ANNOTATION = f"{ANNOTATION_PREFIX}/last-decision"
PatchType = Literal["merge", "json"]
Obj = dict[str, Any]


@dataclass(frozen=True)
class Weights:
    """Traffic percentages; integers 0-100 that sum to 100."""

    stable: int
    canary: int

    def __post_init__(self) -> None:
        for w in (self.stable, self.canary):
            if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 100:
                raise ValueError(f"weights must be integers from 0 to 100, got {w!r}")
        if self.stable + self.canary != 100:
            raise ValueError(f"weights must sum to 100, got {self.stable} + {self.canary}")

    @classmethod
    def canary_at(cls, canary: int) -> Weights:
        if not isinstance(canary, int) or not 0 <= canary <= 100:
            raise ValueError(f"the canary weight must be an integer from 0 to 100, got {canary!r}")
        return cls(100 - canary, canary)


@dataclass(frozen=True)
class Routes:
    """What :meth:`IstioRouter.get_routes` read: enough to write a guarded patch against it."""

    name: str
    namespace: str
    resource_version: str
    weights: Weights
    stable_host: str
    canary_host: str
    route_index: int
    stable_index: int
    canary_index: int
    annotations: dict[str, str] = field(default_factory=dict)
    obj: Obj = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Backend:
    """How to recognise one side's destination host."""

    isvc: str
    host_substring: str | None = None

    def matches(self, host: str) -> bool:
        if self.host_substring:
            return self.host_substring in host
        first = host.split(".", 1)[0]
        return first in (self.isvc, f"{self.isvc}-predictor", f"{self.isvc}-transformer")

    def describe(self) -> str:
        if self.host_substring:
            return f"containing {self.host_substring!r}"
        return f"named {self.isvc!r} (or {self.isvc}-predictor / {self.isvc}-transformer)"


def _pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class IstioRouter:
    """Reads and writes the stable/canary split of one VirtualService."""

    def __init__(
        self,
        gateway: Gateway,
        name: str,
        stable: Backend,
        canary: Backend,
        *,
        route_name: str = "primary",
        patch_type: PatchType = "merge",
    ) -> None:
        self.gateway, self.name = gateway, name
        self.stable, self.canary = stable, canary
        self.route_name, self.patch_type = route_name, patch_type

    # reading -----------------------------------------------------------------------------------
    def get_routes(self) -> Routes:
        obj = self.gateway.get(ISTIO, self.name)
        return self.parse(obj)

    def parse(self, obj: Obj) -> Routes:
        where = f'VirtualService "{self.name}"'
        http = (obj.get("spec") or {}).get("http") or []
        names = [r.get("name", "<unnamed>") for r in http]
        idx = next((i for i, r in enumerate(http) if r.get("name") == self.route_name), None)
        if idx is None:
            raise RoutesError(
                f"{where} has no http route named {self.route_name!r} "
                f"(its routes: {', '.join(names) or 'none'}); "
                "expected one with a stable and a canary destination"
            )
        dests = http[idx].get("route") or []
        hosts = [str((d.get("destination") or {}).get("host", "")) for d in dests]
        if len(dests) != 2:
            raise RoutesError(
                f"{where}: route {self.route_name!r} has {len(dests)} destination(s) "
                f"({', '.join(hosts) or 'none'}); "
                "expected exactly two, stable and canary"
            )
        s = [i for i, h in enumerate(hosts) if self.stable.matches(h)]
        c = [i for i, h in enumerate(hosts) if self.canary.matches(h)]
        if len(s) != 1 or len(c) != 1 or s == c:
            raise RoutesError(
                f"{where}: route {self.route_name!r} destinations {hosts} do not split into one stable host "
                f"{self.stable.describe()} and one canary host {self.canary.describe()}"
            )
        raw = [dests[s[0]].get("weight", 0), dests[c[0]].get("weight", 0)]
        try:
            weights = Weights(int(raw[0]), int(raw[1]))
        except (TypeError, ValueError) as e:
            raise RoutesError(f"{where}: route {self.route_name!r} has invalid weights {raw}: {e}") from e
        meta = obj.get("metadata") or {}
        return Routes(
            name=self.name,
            namespace=self.gateway.namespace,
            resource_version=str(meta.get("resourceVersion", "")),
            weights=weights,
            stable_host=hosts[s[0]],
            canary_host=hosts[c[0]],
            route_index=idx,
            stable_index=s[0],
            canary_index=c[0],
            annotations=dict(meta.get("annotations") or {}),
            obj=obj,
        )

    # writing -----------------------------------------------------------------------------------
    def build_patch(
        self,
        routes: Routes,
        weights: Weights | None,
        annotations: dict[str, str | None] | None = None,
        *,
        expect_resource_version: str | None = None,
    ) -> Obj | list[Obj]:
        """The guarded patch that moves ``routes`` to ``weights`` (None: keep) and sets ``annotations``.

        ``expect_resource_version`` pins a resourceVersion the caller saw earlier instead of the one read.
        """
        annotations = annotations or {}
        if self.patch_type == "merge":
            rv = expect_resource_version or routes.resource_version
            patch: Obj = {"metadata": {"resourceVersion": rv}}
            if annotations:
                patch["metadata"]["annotations"] = annotations
            if weights is not None:
                http = copy.deepcopy(routes.obj["spec"]["http"])
                dests = http[routes.route_index]["route"]
                dests[routes.stable_index]["weight"] = weights.stable
                dests[routes.canary_index]["weight"] = weights.canary
                patch["spec"] = {"http": http}
            return patch
        ops: list[Obj] = []
        if expect_resource_version:
            ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": expect_resource_version})
        base = ("spec", "http", routes.route_index)
        if weights is not None:
            ops.append({"op": "test", "path": _pointer(*base, "name"), "value": self.route_name})
            sides = (
                (routes.stable_index, routes.stable_host, routes.weights.stable, weights.stable),
                (routes.canary_index, routes.canary_host, routes.weights.canary, weights.canary),
            )
            for idx, host, old, _ in sides:  # every test first, then the writes
                dest = (*base, "route", idx)
                ops.append({"op": "test", "path": _pointer(*dest, "destination", "host"), "value": host})
                ops.append({"op": "test", "path": _pointer(*dest, "weight"), "value": old})
            for idx, _, _, new in sides:
                ops.append({"op": "replace", "path": _pointer(*base, "route", idx, "weight"), "value": new})
        if annotations:
            current = (routes.obj.get("metadata") or {}).get("annotations")
            if current is None:
                kept = {k: v for k, v in annotations.items() if v is not None}
                ops.append({"op": "add", "path": "/metadata/annotations", "value": kept})
            else:
                for k, v in annotations.items():
                    if v is not None:
                        ops.append({"op": "add", "path": _pointer("metadata", "annotations", k), "value": v})
                    elif k in current:
                        ops.append({"op": "remove", "path": _pointer("metadata", "annotations", k)})
        return ops

    def set_routes(
        self,
        routes: Routes,
        weights: Weights | None,
        annotations: dict[str, str | None] | None = None,
        *,
        dry_run: bool = False,
        expect_resource_version: str | None = None,
    ) -> tuple[Obj | list[Obj], Routes | None]:
        """Write the patch (unless ``dry_run``); returns it and the routes as written (None on dry run)."""
        patch = self.build_patch(
            routes, weights, annotations, expect_resource_version=expect_resource_version
        )
        if dry_run:
            return patch, None
        written = self.gateway.patch(ISTIO, self.name, patch)
        return patch, self.parse(written)

    def record(self, routes: Routes, reason: str, message: str, *, warning: bool = False) -> None:
        """A Kubernetes Event on the VirtualService."""
        self.gateway.record_event(routes.obj, reason, message, warning=warning)


def decision(action: str, weights: Weights, reason: str, at: str, **extra: Any) -> str:
    """The JSON value of the last-decision annotation."""
    return json.dumps(
        {
            "action": action,
            "stable": weights.stable,
            "canary": weights.canary,
            "reason": reason,
            "time": at,
            **extra,
        },
        sort_keys=True,
    )
