"""The local payload logger: KServe's agent logger, in process, off the request path.

KServe's agent (``pkg/logger``) queues a CloudEvent for every request *before* proxying it
and one for the response only when the status is 200, both with the same ``ce-id`` (the
request's ``Ce-Id`` header, else a new uuid), the request's own ``Content-Type`` on both, and
the bytes exactly as they went by. :class:`PayloadLogger` does the same for a component that
has no agent in front of it (``--logger_url``; the gRPC port, which the agent cannot see)::

    logger = PayloadLogger("http://drift/", inference_service="risk", component="predictor")
    logger.open()                                  # sender thread(s); ``await start()`` also works
    logger.log_exchange(event_id, request_body, content_type, ok, response_body, received_ns)
    logger.close()                                 # sends what is queued, bounded by drain_timeout

``log_exchange`` / ``log_request`` / ``log_response`` only append a small tuple to a bounded
queue (no formatting, no I/O; bodies may be functions, called in the sender thread). A sender
thread with its own keep-alive connection (``log_transport``) encodes (``event_encoding``) and
sends them in one of two formats:

* ``binary`` (default): exactly the agent's HTTP requests, one per event, pipelined on one
  connection when the receiver keeps it alive;
* ``batch``: one POST of ``application/cloudevents-batch+json`` per flush, the events as
  structured CloudEvents.

Capacity is ``queue_size`` events not yet finished (queued or in flight); beyond it events are
dropped and counted, so a slow or dead receiver never slows inference. Every accepted event
ends as exactly one of sent, failed (no 2xx answer) or dropped (left behind at ``close``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, SOURCE_PREFIX
from serving_common.event_encoding import (
    EXT_METADATA,
    BinaryEncoder,
    Body,
    Event,
    Identity,
    StructuredEncoder,
)
from serving_common.log_transport import FAILED, Connection

__all__ = ["EXT_METADATA", "LoggerFormat", "LoggerMode", "LoggerStats", "PayloadLogger", "request_id"]

log = logging.getLogger(__name__)

LoggerMode = Literal["all", "request", "response"]
LoggerFormat = Literal["binary", "batch"]
WARN_EVERY_SECONDS = 10.0
"""Failed sends are logged at most this often (each failed event is counted in the metrics)."""


def request_id(headers: Mapping[str, str] | None = None) -> str:
    """The id that joins request and response: the incoming ``ce-id`` header, else a new uuid4."""
    if headers is not None:
        for key, value in headers.items():
            if key.lower() == "ce-id" and value:
                return value
    return str(uuid.uuid4())


@dataclass(frozen=True)
class LoggerStats:
    """Counts since start; ``pending`` = accepted events not yet sent, failed or dropped."""

    enqueued: int
    sent: int
    failed: int
    dropped: int
    pending: int
    cpu_seconds: float = 0.0
    """CPU time the sender threads spent (encoding, sending, reading answers)."""


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
        format: LoggerFormat = "binary",
        queue_size: int = 1000,
        timeout: float = 2.0,
        workers: int = 1,
        drain_timeout: float = 5.0,
        linger: float = 0.01,
        max_batch: int = 1024,
    ) -> None:
        if mode not in ("all", "request", "response"):
            raise ValueError(f"logger mode must be all, request or response, not {mode!r}")
        if format not in ("binary", "batch"):
            raise ValueError(f"logger format must be binary or batch, not {format!r}")
        if queue_size < 1 or workers < 1 or max_batch < 1 or timeout <= 0 or drain_timeout < 0 or linger < 0:
            raise ValueError(
                "queue_size, workers and max_batch must be >= 1, timeout > 0, drain_timeout and linger >= 0"
            )
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"logger url must be http:// or https://, not {url!r}")
        Connection(url, timeout)  # validates the URL now, not in the sender thread
        self.url = url
        self.mode: LoggerMode = mode
        self.format: LoggerFormat = format
        self.identity = Identity(source, inference_service, namespace, component, endpoint)
        self.queue_size = queue_size
        self.timeout = timeout
        self.workers = workers
        self.drain_timeout = drain_timeout
        self.linger = linger
        self.max_batch = max_batch
        self._log_requests = mode != "response"
        self._log_responses = mode != "request"
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._accepted = self._rejected = self._sent = self._failed = self._dropped = self._finished = 0
        self._cpu = 0.0
        self._warned_at, self._suppressed = -WARN_EVERY_SECONDS, 0
        self._threads: list[threading.Thread] = []
        self._connections: list[Connection] = []
        self._running = False
        self._closing = threading.Event()
        self._abandon = False

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def open(self) -> None:
        """Start the sender thread(s) (idempotent)."""
        if self._running:
            return
        self._closing.clear()
        self._abandon = False
        self._connections = [Connection(self.url, self.timeout) for _ in range(self.workers)]
        self._threads = [
            threading.Thread(target=self._run, args=(c,), name=f"payload-logger-{i}", daemon=True)
            for i, c in enumerate(self._connections)
        ]
        self._running = True
        for t in self._threads:
            t.start()

    def close(self, drain_timeout: float | None = None) -> None:
        """Send what is queued (bounded by ``drain_timeout`` seconds), then stop; the rest is dropped."""
        if not self._running:
            return
        self._running = False  # new events are dropped from here on
        self._closing.set()
        deadline = time.monotonic() + (self.drain_timeout if drain_timeout is None else drain_timeout)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            self._abandon = True
            for c in self._connections:
                c.abort()
            for t in self._threads:
                t.join(self.timeout + 1.0)
        left = 0
        while self._queue:
            self._queue.popleft()
            left += 1
        if left:
            log.warning("payload logger stopped with %d events unsent", left)
            self._count(dropped=left)
        for c in self._connections:
            c.close()
        self._threads, self._connections = [], []

    async def start(self) -> None:
        """:meth:`open` for callers inside an event loop."""
        self.open()

    async def stop(self, drain_timeout: float | None = None) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close, drain_timeout)

    # --- logging (any thread, non-blocking) -----------------------------------------------------

    def log_exchange(
        self,
        event_id: str,
        request: Body,
        content_type: str | None,
        ok: bool,
        response: Body,
        received_ns: int,
        metadata: str = "{}",
    ) -> None:
        """One served exchange, as the agent logs it: the request event, and the response event
        when the answer was a 200 (``ok``); both carry the request's content type."""
        log_request = self._log_requests
        log_response = ok and self._log_responses
        n = log_request + log_response
        if not n:
            return
        with self._lock:  # one capacity check for both events
            room = self.queue_size - (self._accepted - self._finished)
            if not self._running or room < n:
                self._rejected += n if room <= 0 or not self._running else 1
                if room <= 0 or not self._running:
                    return
                log_response = log_response and not log_request  # room for one: keep the request
                n = 1
            self._accepted += n
        append = self._queue.append
        if log_request:
            append(Event(REQUEST_TYPE, event_id, request, content_type, received_ns, metadata))
        if log_response:
            append(Event(RESPONSE_TYPE, event_id, response, content_type, time.time_ns(), metadata))

    def log_request(
        self, id: str, body: Body, content_type: str | None = "application/json", metadata: str = "{}"
    ) -> bool:
        """Queue a request event; ``False`` when it was dropped (or the mode skips requests)."""
        if not self._log_requests:
            return False
        return self._put(Event(REQUEST_TYPE, id, body, content_type, time.time_ns(), metadata))

    def log_response(
        self, id: str, body: Body, content_type: str | None = "application/json", metadata: str = "{}"
    ) -> bool:
        """Queue a response event (log only 200 responses, as the agent does)."""
        if not self._log_responses:
            return False
        return self._put(Event(RESPONSE_TYPE, id, body, content_type, time.time_ns(), metadata))

    def stats(self) -> LoggerStats:
        with self._lock:
            return LoggerStats(
                enqueued=self._accepted,
                sent=self._sent,
                failed=self._failed,
                dropped=self._rejected + self._dropped,
                pending=self._accepted - self._sent - self._failed - self._dropped,
                cpu_seconds=self._cpu,
            )

    # --- internals ------------------------------------------------------------------------------

    def _put(self, event: Event) -> bool:
        with self._lock:
            if not self._running or self._accepted - self._finished >= self.queue_size:
                self._rejected += 1
                return False
            self._accepted += 1
        self._queue.append(event)
        return True

    def _count(self, sent: int = 0, failed: int = 0, dropped: int = 0) -> None:
        with self._lock:
            self._sent += sent
            self._failed += failed
            self._dropped += dropped
            self._finished += sent + failed + dropped

    def _take(self) -> list[Event]:
        queue, batch = self._queue, list[Event]()
        try:
            while len(batch) < self.max_batch:
                batch.append(queue.popleft())
        except IndexError:
            pass
        return batch

    def _run(self, connection: Connection) -> None:
        binary = BinaryEncoder(self.url, self.identity) if self.format == "binary" else None
        structured = StructuredEncoder(self.url, self.identity) if self.format == "batch" else None
        while not self._abandon:
            cpu = time.thread_time()
            batch = self._take()
            if not batch:
                if self._closing.is_set():
                    return
                self._closing.wait(self.linger)
                continue
            settle = self.linger if len(batch) < self.max_batch else 0.0  # behind: no pause
            try:
                if binary is not None:
                    recorded = binary.recorded_now()
                    statuses = connection.post([binary.encode(e, recorded) for e in batch], settle)
                else:
                    assert structured is not None
                    statuses = connection.post([structured.request(batch)], settle)
                    statuses = statuses * len(batch)
            except Exception as e:  # an event body that cannot be made: never kill the sender
                self._warn("payload logger could not encode %d events: %r", len(batch), e)
                statuses = [FAILED] * len(batch)
            self._settle(
                batch, statuses, time.thread_time() - cpu
            )  # (post waited ``linger``: events gathered)

    def _settle(self, batch: list[Event], statuses: list[int], cpu: float) -> None:
        ok = sum(1 for s in statuses if 200 <= s < 300)
        bad = len(batch) - ok
        with self._lock:
            self._cpu += cpu
        if bad and self._abandon:
            self._count(sent=ok, dropped=bad)
            return
        self._count(sent=ok, failed=bad)
        if bad:
            codes = sorted({s for s in statuses if not 200 <= s < 300})
            self._warn(
                "payload logger: %d of %d events to %s not accepted (%s)",
                bad,
                len(batch),
                self.url,
                ", ".join("no answer" if c == FAILED else str(c) for c in codes),
            )

    def _warn(self, message: str, *args: object) -> None:
        """At most one warning per ``WARN_EVERY_SECONDS`` (a receiver that is down fails every
        batch); the next one says how many were left out. Counts are in the metrics either way."""
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY_SECONDS:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (%d similar warning(s) left out)"
            args = (*args, self._suppressed)
        self._warned_at, self._suppressed = now, 0
        log.warning(message, *args)

    def __repr__(self) -> str:
        return (
            f"PayloadLogger({self.url!r}, mode={self.mode!r}, format={self.format!r}, "
            f"inference_service={self.identity.inference_service!r})"
        )
