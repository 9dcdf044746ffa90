"""After a promotion the drift detector judges against the promoted bundle: its Deployment's bundle.

The detector compares traffic with its bundle's reference sample and scores. Left on the old bundle
after a promotion, the population that caused the run keeps drifting and the alert keeps firing.
So, once the stable side serves the promoted bundle, the detector's Deployment is pointed at it:
one JSON patch guarded like every write of the trigger (``test`` ops on the ``resourceVersion``
read and each old value; a concurrent edit is a conflict, never an overwrite):

* the bundle on a claim (the chart's ``pvc://<claim>/<path>``): the ``model`` volume's
  ``claimName`` and the container's ``subPath`` of its ``--model_dir`` mount;
* the bundle fetched by a storage initializer (other schemes): that init container's first arg.

The pod template changes, so the Deployment (``Recreate``) replaces the pod: the new detector
loads the promoted reference and its windows start empty. The feedback store is on its own claim
(or a database URL) and is not touched.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError, InvalidError
from ..gateway import Gateway
from ..kube import Resource

__all__ = ["CONTAINER", "DEPLOYMENTS", "bundle_patch", "point_detector"]

Obj = dict[str, Any]
DEPLOYMENTS = Resource("apps", "v1", "deployments")
"""apps/v1 Deployments: the same ``/apis/<group>/<version>`` paths as custom resources, so the
gateway's ``get`` and ``patch`` serve them. Only the trigger writes one (the rollout CLI never does)."""
CONTAINER = "drift-detector"
PVC = "pvc://"


def _claim(uri: str) -> tuple[str, str]:
    claim, _, path = uri.removeprefix(PVC).partition("/")
    return claim, path.strip("/")


def _model_dir(container: Obj) -> str:
    args = [str(a) for a in container.get("args") or []]
    return args[args.index("--model_dir") + 1] if "--model_dir" in args[:-1] else "/mnt/models"


def bundle_patch(deployment: Obj, storage_uri: str) -> tuple[str, list[Obj]]:
    """The bundle the detector reads now and the JSON patch that points it at ``storage_uri``
    (no ops when it already reads that bundle). ``InvalidError`` when the Deployment has no
    bundle mount this can move, naming what is missing."""
    name = str(deployment["metadata"].get("name"))
    what = DEPLOYMENTS.describe(name)
    pod = deployment["spec"]["template"]["spec"]
    containers = pod.get("containers") or []
    c = next((i for i, x in enumerate(containers) if x.get("name") == CONTAINER), 0)
    if not containers:
        raise InvalidError(f"{what} has no containers", 422)
    model_dir = _model_dir(containers[c]).rstrip("/")
    mounts = containers[c].get("volumeMounts") or []
    m = next((i for i, x in enumerate(mounts) if str(x.get("mountPath")).rstrip("/") == model_dir), None)
    if m is None:
        raise InvalidError(f"{what}: no volume is mounted at the detector's --model_dir {model_dir}", 422)
    volumes = pod.get("volumes") or []
    v = next((i for i, x in enumerate(volumes) if x.get("name") == mounts[m].get("name")), None)
    if v is None:
        raise InvalidError(f"{what}: volume {mounts[m].get('name')!r} is mounted but not defined", 422)
    ops: list[Obj] = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": deployment["metadata"]["resourceVersion"],
        }
    ]
    claim_source = volumes[v].get("persistentVolumeClaim")
    if isinstance(claim_source, dict):
        old_path = str(mounts[m].get("subPath") or "").strip("/")
        before = f"{PVC}{claim_source['claimName']}" + (f"/{old_path}" if old_path else "")
        if before == storage_uri.rstrip("/"):
            return before, []
        if not storage_uri.startswith(PVC):
            raise InvalidError(
                f"{what} mounts its bundle from a claim; {storage_uri} is not a pvc:// URI", 422
            )
        claim, path = _claim(storage_uri)
        claim_path = f"/spec/template/spec/volumes/{v}/persistentVolumeClaim/claimName"
        ops += [_test(claim_path, claim_source["claimName"]), _op("replace", claim_path, claim)]
        sub = f"/spec/template/spec/containers/{c}/volumeMounts/{m}/subPath"
        if "subPath" in mounts[m]:
            ops.append(_test(sub, mounts[m]["subPath"]))
            ops.append(_op("replace", sub, path) if path else {"op": "remove", "path": sub})
        elif path:
            ops.append(_op("add", sub, path))
        return before, ops
    inits = pod.get("initContainers") or []
    i = next(
        (
            i
            for i, x in enumerate(inits)
            if x.get("args")
            and any(vm.get("name") == volumes[v]["name"] for vm in x.get("volumeMounts") or [])
        ),
        None,
    )
    if i is None:
        raise InvalidError(
            f"{what}: volume {volumes[v]['name']!r} is neither a claim nor filled by a storage initializer",
            422,
        )
    before = str(inits[i]["args"][0])
    if before == storage_uri:
        return before, []
    if storage_uri.startswith(PVC):
        raise InvalidError(
            f"{what} fetches its bundle with a storage initializer, which cannot read {storage_uri}: "
            "give the detector the bundle claim (driftDetector.storageUri pvc://<claim>/<path>)",
            422,
        )
    arg = f"/spec/template/spec/initContainers/{i}/args/0"
    return before, [*ops, _test(arg, before), _op("replace", arg, storage_uri)]


def _test(path: str, value: Any) -> Obj:
    return {"op": "test", "path": path, "value": value}


def _op(op: str, path: str, value: Any) -> Obj:
    return {"op": op, "path": path, "value": value}


def point_detector(gateway: Gateway, name: str, storage_uri: str) -> tuple[str, bool]:
    """Point Deployment ``name`` at ``storage_uri``; returns the bundle it read before and whether
    it was patched (False: it already reads that bundle)."""
    deployment = gateway.get(DEPLOYMENTS, name)
    before, ops = bundle_patch(deployment, storage_uri)
    if not ops:
        return before, False
    try:
        gateway.patch(DEPLOYMENTS, name, ops)
    except ConflictError as e:
        raise ConflictError(
            f"{DEPLOYMENTS.describe(name)} was changed by someone else since it was read; the detector "
            f"still reads {before}. Point it at {storage_uri} again to act on the current state.",
            e.status,
        ) from e
    return before, True
