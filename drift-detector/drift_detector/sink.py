"""Drift notifications to a sink URL: a CloudEvent (binary mode) or a plain JSON webhook.

Posted from a bounded queue by one background task, so a slow sink never delays detection;
notifications beyond the queue are counted as failed.

CloudEvent: ``ce-type: org.kubeflow.serving.drift.detected``, ``ce-source: drift-detector``,
``ce-subject: <namespace>/<inferenceservice>``, the ``inferenceservicename``, ``namespace`` and
``component`` extensions, and the verdict (as in ``GET /status``) as the JSON body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import orjson
from serving_common.cloudevents import EXT_COMPONENT, EXT_INFERENCE_SERVICE, EXT_NAMESPACE

from drift_detector.metrics import Metrics

__all__ = ["DRIFT_TYPE", "Sink"]

DRIFT_TYPE = "org.kubeflow.serving.drift.detected"
SOURCE = "drift-detector"
log = logging.getLogger(__name__)


class Sink:
    def __init__(
        self,
        url: str,
        mode: Literal["cloudevent", "webhook"],
        timeout: float,
        metrics: Metrics,
        size: int = 100,
    ) -> None:
        self.url, self.mode, self.timeout, self.metrics = url, mode, timeout, metrics
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._task = asyncio.create_task(self._run(), name="drift-sink")

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=self.timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def notify(self, verdict: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(verdict)
        except asyncio.QueueFull:
            self.metrics.notifications.labels(outcome="failed").inc()
            log.warning("drift sink queue full; notification dropped")

    async def _run(self) -> None:
        while True:
            verdict = await self._queue.get()
            try:
                await self._post(verdict)
            finally:
                self._queue.task_done()

    async def _post(self, verdict: dict[str, Any]) -> None:
        assert self._client is not None
        body = orjson.dumps(verdict, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = {"content-type": "application/json"}
        if self.mode == "cloudevent":
            headers.update(
                {
                    "ce-specversion": "1.0",
                    "ce-id": str(uuid.uuid4()),
                    "ce-type": DRIFT_TYPE,
                    "ce-source": SOURCE,
                    "ce-time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "ce-subject": f"{verdict['namespace']}/{verdict['inferenceservice']}",
                    f"ce-{EXT_INFERENCE_SERVICE}": str(verdict["inferenceservice"]),
                    f"ce-{EXT_NAMESPACE}": str(verdict["namespace"]),
                    f"ce-{EXT_COMPONENT}": str(verdict["component"]),
                }
            )
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
            ok = 200 <= response.status_code < 300
        except (httpx.HTTPError, OSError) as e:
            log.warning("drift sink %s unreachable: %r", self.url, e)
            ok = False
        self.metrics.notifications.labels(outcome="sent" if ok else "failed").inc()
