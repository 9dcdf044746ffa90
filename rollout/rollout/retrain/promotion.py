"""After ``rollout run`` promoted a challenger: the stable InferenceService takes its bundle.

``rollout run`` ends a good rollout with the canary at 100 %. The run is finished only when the
stable side serves the same bundle and takes the traffic back, as Flagger copies the canary's spec
into the primary and routes everything to it: (1) the stable InferenceService's ``STORAGE_URI``
(every component, guarded JSON patch: :func:`rollout.retrain.canary.point_storage`) or, locally,
the stable programs' bundle; (2) wait until the stable side is Ready again (bounded); (3) weights
100/0 on the VirtualService, guarded like every weight change, with an Event. The canary keeps the
new bundle at 0 %: the next challenger replaces it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from ..errors import KubeError
from ..gateway import Gateway
from ..kube import ISTIO, KSERVE
from ..readiness import readiness
from ..router import DECISION_ANNOTATION, Backend, IstioRouter, Weights, decision

__all__ = ["back_to_stable", "wait_ready"]


def _settled(gateway: Gateway, isvc: str) -> str | None:
    """None when ``isvc`` is Ready for its current spec, else why not: a Ready condition left from
    the previous spec does not count when the status reports an older ``observedGeneration``."""
    ready = readiness(gateway, isvc)
    if not ready.ready:
        return ready.message
    obj = gateway.get(KSERVE, isvc)
    observed = (obj.get("status") or {}).get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    if observed is not None and generation is not None and int(observed) < int(generation):
        return f"generation {generation} not observed yet (status at {observed})"
    return None


def wait_ready(
    gateway: Gateway,
    isvc: str,
    timeout: float,
    *,
    poll: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until ``isvc`` is Ready on its current spec (``KubeError`` after ``timeout`` s, naming why not)."""
    deadline = time.monotonic() + timeout
    while (why := _settled(gateway, isvc)) is not None:
        if time.monotonic() > deadline:
            raise KubeError(f"{isvc} not Ready {timeout:g} s after taking the new bundle: {why}")
        sleep(poll)


def back_to_stable(gateway: Gateway, virtual_service: str, stable: str, canary: str, message: str) -> str:
    """Weights 100/0 (guarded by the resourceVersion read); returns the weights as written."""
    router = IstioRouter(gateway, virtual_service, Backend(stable), Backend(canary))
    routes = router.get_routes()
    if routes.weights.canary != 100:
        raise KubeError(
            f"{ISTIO.describe(virtual_service)} has canary {routes.weights.canary}%, not the 100% "
            "`rollout run` promoted to: the weights were changed since; left as they are"
        )
    weights = Weights(100, 0)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    note = decision("retrain-promoted", weights, message, at)
    _, written = router.set_routes(routes, weights, {DECISION_ANNOTATION: note})
    if written is None:  # only a dry run answers None
        raise KubeError(f"{ISTIO.describe(virtual_service)}: the weights were not written")
    with contextlib.suppress(KubeError):  # Events are a courtesy; the annotation and the log say it too
        router.record(written, "RetrainStablePromoted", message)
    w = written.weights
    return f"{ISTIO.describe(virtual_service)}: stable {w.stable}% / canary {w.canary}%"
