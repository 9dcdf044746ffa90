"""Point an InferenceService (the canary; the stable after a promotion) at a bundle: every
``STORAGE_URI`` of its components.

One JSON patch, guarded like the rollout CLI's weight changes: ``test`` ops pin the
``resourceVersion`` read and each old value, so a concurrent edit is a conflict (exit 3 in the
CLI's terms), never an overwrite. KServe rolls the canary's pods onto the new model.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError, InvalidError
from ..gateway import Gateway
from ..kube import KSERVE

__all__ = ["COMPONENTS", "point_canary", "point_storage", "served_uri", "storage_uri_patch"]

Obj = dict[str, Any]
COMPONENTS = ("predictor", "transformer", "explainer")


def storage_uri_patch(isvc: Obj, storage_uri: str) -> list[Obj]:
    """The JSON patch that sets ``STORAGE_URI`` in every component container (and ``storageUri``
    of a built-in model spec), with ``test`` ops on the resourceVersion and the old values."""
    ops: list[Obj] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": isvc["metadata"]["resourceVersion"]}
    ]
    spec = isvc.get("spec") or {}
    for component in COMPONENTS:
        comp = spec.get(component)
        if not isinstance(comp, dict):
            continue
        model = comp.get("model")
        if isinstance(model, dict) and "storageUri" in model:
            path = f"/spec/{component}/model/storageUri"
            ops += [{"op": "test", "path": path, "value": model["storageUri"]}, _replace(path, storage_uri)]
        for c, container in enumerate(comp.get("containers") or []):
            for e, env in enumerate(container.get("env") or []):
                if env.get("name") == "STORAGE_URI" and "value" in env:
                    path = f"/spec/{component}/containers/{c}/env/{e}/value"
                    ops += [{"op": "test", "path": path, "value": env["value"]}, _replace(path, storage_uri)]
    if len(ops) == 1:
        name = isvc["metadata"].get("name")
        raise InvalidError(
            f"{KSERVE.describe(str(name))} has no STORAGE_URI or storageUri to point at a bundle", 422
        )
    return ops


def served_uri(isvc: Obj) -> str:
    """The bundle ``isvc`` serves: the first component's ``STORAGE_URI`` (or ``storageUri``)."""
    return next(
        (
            str(op["value"])
            for op in storage_uri_patch(isvc, "")
            if op["op"] == "test" and op["path"] != "/metadata/resourceVersion"
        ),
        "",
    )


def _replace(path: str, value: str) -> Obj:
    return {"op": "replace", "path": path, "value": value}


def point_canary(gateway: Gateway, canary: str, storage_uri: str) -> tuple[str, Obj]:
    """Patch the canary; returns the storage URI it served before and the object as written."""
    return point_storage(gateway, canary, storage_uri)


def point_storage(gateway: Gateway, name: str, storage_uri: str) -> tuple[str, Obj]:
    """Patch InferenceService ``name``; returns the storage URI it served before and the object as written."""
    canary = name
    isvc = gateway.get(KSERVE, canary)
    before = served_uri(isvc)
    try:
        written = gateway.patch(KSERVE, canary, storage_uri_patch(isvc, storage_uri))
    except ConflictError as e:
        raise ConflictError(
            f"{KSERVE.describe(canary)} was changed by someone else since it was read; its STORAGE_URI "
            f"was not changed (still {before}). Start the run again to act on the current state.",
            e.status,
        ) from e
    return str(before), written
