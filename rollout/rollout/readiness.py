"""Readiness of the two InferenceServices, from their ``status.conditions`` (type ``Ready``)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ForbiddenError, NotFoundError
from .gateway import Gateway
from .kube import KSERVE

__all__ = ["Readiness", "readiness"]


@dataclass(frozen=True)
class Readiness:
    isvc: str
    ready: bool | None  # None: unknown (the InferenceService does not exist, or may not be read)
    message: str


def readiness(gateway: Gateway, isvc: str) -> Readiness:
    try:
        obj = gateway.get(KSERVE, isvc)
    except NotFoundError:
        return Readiness(isvc, None, "not found")
    except ForbiddenError:
        return Readiness(isvc, None, "not allowed to read InferenceServices")
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        return Readiness(isvc, False, "no Ready condition yet")
    ok = str(ready.get("status")) == "True"
    return Readiness(
        isvc, ok, "Ready" if ok else (ready.get("message") or ready.get("reason") or "not Ready")
    )
