"""The predictor's drain (``serving_common.drain``): KServe's uvicorn server, drained.

The first SIGTERM / SIGINT makes readiness answer 503 (REST ``/v2/health/ready``,
``/v2/models/NAME/ready``, ``/v1/models/NAME``; gRPC ``ServerReady`` / ``ModelReady`` false) while
inference on both ports goes on for ``PREDICTOR_DRAIN_SECONDS``; then the REST server and the gRPC
server (``server.py``) stop together, each letting requests in flight finish for
``PREDICTOR_GRACE_SECONDS``.
"""

from __future__ import annotations

from kserve.protocol.rest.server import _RefreshingServer
from serving_common.drain import Drain, DrainingMixin

__all__ = ["Drain", "DrainingServer"]


class DrainingServer(DrainingMixin, _RefreshingServer):  # type: ignore[misc]
    def __init__(self, config: object, drain: Drain) -> None:
        super().__init__(config)
        self.attach(drain)
