"""The detector's drain (``serving_common.drain``): on SIGTERM ``/ready`` answers 503 at once, events
are taken for ``DRIFT_DRAIN_SECONDS`` more, then uvicorn stops gracefully and the app's shutdown
decodes what is queued."""

from __future__ import annotations

import uvicorn
from serving_common.drain import Drain, DrainingMixin

__all__ = ["Drain", "DrainingServer"]


class DrainingServer(DrainingMixin, uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.attach(drain)
