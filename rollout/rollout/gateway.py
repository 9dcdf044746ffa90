"""What the router needs from an API: the interface both gateways implement.

:class:`rollout.kube.KubeGateway` (a cluster's API server) and :class:`rollout.local.LocalGateway`
(the VirtualService file of ``make up``) both satisfy it, so the router, readiness and ``run``
are written once (as Flagger keeps one router interface for many meshes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .kube import Resource

__all__ = ["Gateway"]


class Gateway(Protocol):
    namespace: str

    def get(self, kind: Resource, name: str) -> dict[str, Any]: ...

    def patch(
        self, kind: Resource, name: str, patch: dict[str, Any] | list[dict[str, Any]]
    ) -> dict[str, Any]: ...

    def record_event(
        self, involved: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None: ...
