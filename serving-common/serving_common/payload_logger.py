"""The local payload logger: KServe's agent logger, in process, for the local stack.

KServe's agent (``pkg/logger``) posts every request and every 200 response of a component as
a CloudEvent in *binary* content mode to the logger URL::

    POST <url>
    ce-specversion: 1.0
    ce-id: <the request's ce-id header, or a new uuid>     (same on request and response)
    ce-type: org.kubeflow.serving.inference.request | ...response
    ce-source: http://localhost:9081/
    ce-time: <RFC 3339>
    ce-inferenceservicename / ce-namespace / ce-component / ce-endpoint (empty) / ce-metadata ({})
    Content-Type: <the request's Content-Type>                (also on the response event)
    <body: the request or response bytes, unchanged>

:class:`PayloadLogger` sends the same events. ``log_request`` / ``log_response`` are plain
(non-async) methods that only put the event on a bounded queue and return at once; a
background task posts them. When the queue is full, or the logger is not running, the event
is dropped and counted, so a slow or failing receiver never slows inference. Counts are read
with :meth:`PayloadLogger.stats` (the components export them as Prometheus metrics).

``httpx`` is imported in :meth:`PayloadLogger.start`, so ``serving_common`` imports without it.

Usage (inside the server's event loop)::

    logger = PayloadLogger("http://drift:8080", inference_service="income", component="predictor")
    await logger.start()
    rid = request_id(headers)                  # the incoming ce-id, or a new uuid
    logger.log_request(rid, body, "application/json")
    ...
    logger.log_response(rid, response_body, "application/json")   # only for 200 responses
    await logger.stop()                        # drains the queue, bounded by ``drain_timeout``
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from serving_common.cloudevents import (
    EXT_COMPONENT,
    EXT_ENDPOINT,
    EXT_INFERENCE_SERVICE,
    EXT_NAMESPACE,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    SOURCE_PREFIX,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["EXT_METADATA", "LoggerMode", "LoggerStats", "PayloadLogger", "request_id"]

log = logging.getLogger(__name__)

LoggerMode = Literal["all", "request", "response"]
EXT_METADATA = "metadata"
"""The agent also sets ``ce-metadata``: JSON of the request headers it was told to copy (``{}``)."""


def request_id(headers: Mapping[str, str] | None = None) -> str:
    """The id that joins request and response: the incoming ``ce-id`` header, else a new uuid4."""
    if headers is not None:
        for key, value in headers.items():
            if key.lower() == "ce-id" and value:
                return value
    return str(uuid.uuid4())


@dataclass(frozen=True)
class LoggerStats:
    """Counts since start. ``dropped`` is queue overflow plus events logged while not running."""

    enqueued: int
    sent: int
    failed: int
    dropped: int
    pending: int


@dataclass(frozen=True)
class _Event:
    id: str
    type: str
    body: bytes
    content_type: str
    time: str


class PayloadLogger:
    """Emits KServe-agent CloudEvents for requests and responses, off the request path."""

    def __init__(
        self,
        url: str,
        *,
        mode: LoggerMode = "all",
        inference_service: str,
        namespace: str = "default",
        component: str = "predictor",
        endpoint: str = "",
        source: str = SOURCE_PREFIX,
        queue_size: int = 1000,
        timeout: float = 2.0,
        workers: int = 2,
        drain_timeout: float = 5.0,
    ) -> None:
        if mode not in ("all", "request", "response"):
            raise ValueError(f"logger mode must be all, request or response, not {mode!r}")
        if queue_size < 1 or workers < 1 or timeout <= 0 or drain_timeout < 0:
            raise ValueError("queue_size and workers must be >= 1, timeout > 0, drain_timeout >= 0")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"logger url must be http:// or https://, not {url!r}")
        self.url = url
        self.mode: LoggerMode = mode
        self.inference_service = inference_service
        self.namespace = namespace
        self.component = component
        self.endpoint = endpoint
        self.source = source
        self.queue_size = queue_size
        self.timeout = timeout
        self.workers = workers
        self.drain_timeout = drain_timeout
        self._queue: asyncio.Queue[_Event] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._lock = threading.Lock()
        self._enqueued = self._sent = self._failed = self._dropped = 0

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._queue is not None

    async def start(self) -> None:
        """Start the sender tasks on the running event loop (idempotent)."""
        if self._queue is not None:
            return
        import httpx

        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"payload-logger-{i}") for i in range(self.workers)
        ]

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Send what is queued (bounded by ``drain_timeout`` seconds), then stop; the rest is dropped."""
        queue = self._queue
        if queue is None:
            return
        deadline = self.drain_timeout if drain_timeout is None else drain_timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.join(), timeout=deadline)
        self._queue = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        left = queue.qsize()
        if left:
            log.warning("payload logger stopped with %d events unsent", left)
            self._count(dropped=left)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- logging (sync, non-blocking) ---------------------------------------------------------

    def log_request(self, id: str, body: bytes, content_type: str = "application/json") -> bool:
        """Queue the request event; ``False`` when it was dropped (or the mode skips requests)."""
        if self.mode == "response":
            return False
        return self._enqueue(_Event(id, REQUEST_TYPE, body, content_type, _now()))

    def log_response(self, id: str, body: bytes, content_type: str = "application/json") -> bool:
        """Queue the response event (log only 200 responses, as the agent does)."""
        if self.mode == "request":
            return False
        return self._enqueue(_Event(id, RESPONSE_TYPE, body, content_type, _now()))

    def stats(self) -> LoggerStats:
        queue = self._queue
        with self._lock:
            return LoggerStats(
                enqueued=self._enqueued,
                sent=self._sent,
                failed=self._failed,
                dropped=self._dropped,
                pending=queue.qsize() if queue is not None else 0,
            )

    def headers(self, event_id: str, event_type: str, content_type: str, time: str) -> dict[str, str]:
        """The binary-mode headers KServe's agent sends for one event."""
        return {
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": event_type,
            "ce-source": self.source,
            "ce-time": time,
            f"ce-{EXT_INFERENCE_SERVICE}": self.inference_service,
            f"ce-{EXT_NAMESPACE}": self.namespace,
            f"ce-{EXT_COMPONENT}": self.component,
            f"ce-{EXT_ENDPOINT}": self.endpoint,
            f"ce-{EXT_METADATA}": "{}",
            "content-type": content_type,
        }

    # --- internals ------------------------------------------------------------------------------

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, f"_{name}", getattr(self, f"_{name}") + delta)

    def _enqueue(self, event: _Event) -> bool:
        queue, loop = self._queue, self._loop
        if queue is None or loop is None or loop.is_closed():
            self._count(dropped=1)
            return False
        if threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._put, queue, event)
            return True
        return self._put(queue, event)

    def _put(self, queue: asyncio.Queue[_Event], event: _Event) -> bool:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            self._count(dropped=1)
            return False
        self._count(enqueued=1)
        return True

    async def _send_loop(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            event = await queue.get()
            try:
                await self._send(event)
            except asyncio.CancelledError:  # stopped while sending: the event is lost, say so
                self._count(dropped=1)
                raise
            finally:
                queue.task_done()

    async def _send(self, event: _Event) -> None:
        import httpx

        client = self._client
        assert client is not None
        headers = self.headers(event.id, event.type, event.content_type, event.time)
        try:
            response = await client.post(self.url, content=event.body, headers=headers)
        except (httpx.HTTPError, OSError) as e:
            self._count(failed=1)
            log.warning("payload logger could not send %s %s to %s: %r", event.type, event.id, self.url, e)
            return
        if 200 <= response.status_code < 300:
            self._count(sent=1)
        else:
            self._count(failed=1)
            log.warning(
                "payload logger sent %s %s, %s answered %d: %s",
                event.type,
                event.id,
                self.url,
                response.status_code,
                response.text[:200],
            )

    def __repr__(self) -> str:
        return (
            f"PayloadLogger({self.url!r}, mode={self.mode!r}, inference_service={self.inference_service!r})"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
