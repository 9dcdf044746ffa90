"""``POST /`` and ``POST /events``, answered at the ASGI level in front of the FastAPI app.

The accept step is cheap and does not grow with the body's content: read the body (bounded),
check the CloudEvent envelope (:mod:`drift_detector.cloudevent`), append the raw event to the
detector's bounded queue and answer. Bodies are decoded later, in batches, by the detector's
worker. FastAPI's per-request stack (request objects, routing, exception middleware) cost more
than all of that, so these two paths never enter it; every other path does.

Answers (JSON):

* ``200 {"status": "accepted", "id"}`` (binary, structured) / ``{"status": "accepted", "events": n}`` (batch);
* ``200 {"status": "ignored", "reason"}``: not inference (empty body, explainer call);
* ``400 {"error", "reason"}``: the envelope is wrong; for a batch, the valid events are taken and
  ``{"error", "reason", "accepted": n, "rejected": [{"index", "reason", "error"}]}`` names each bad one;
* ``413`` body over ``DRIFT_MAX_BODY_BYTES`` (announced or streamed: reading stops at the limit);
  ``431`` more than ``DRIFT_MAX_HEADERS`` headers or ``DRIFT_MAX_HEADER_BYTES`` (every path);
  ``408`` body not complete within ``DRIFT_BODY_TIMEOUT_SECONDS``;
  ``503`` (``Retry-After``) queue full or bundle loading.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from serving_common.limits import LimitExceeded, Limits, check_headers, read_body

from drift_detector.cloudevent import BATCH, STRUCTURED, Event, batch_events, binary_event, structured_event
from drift_detector.detector import Detector
from drift_detector.errors import BadEvent, BodyTimeout, DriftError, Ignored, PayloadTooLarge
from drift_detector.metrics import Metrics
from drift_detector.settings import Settings

__all__ = ["Ingress"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATHS = frozenset({"/", "/events"})
JSON_HEADERS = [(b"content-type", b"application/json")]
MAX_LISTED = 20
"""Bad events of a batch listed in the answer at most (all are counted)."""


class _Disconnected(Exception):
    pass


class Ingress:
    """An ASGI app: event POSTs answered here, everything else passed on to ``app``."""

    def __init__(
        self, app: ASGIApp, settings: Settings, metrics: Metrics, detector: Callable[[], Detector]
    ) -> None:
        self.app = app
        self.state = getattr(app, "state", None)
        """The wrapped FastAPI app's state (``state.service``)."""
        self.settings = settings
        self.metrics = metrics
        self.detector = detector
        self.allowed = frozenset(settings.inference_services)
        self.limits = Limits(
            prefix="DRIFT_",
            max_body_bytes=settings.max_body_bytes,
            max_headers=settings.max_headers,
            max_header_bytes=settings.max_header_bytes,
            body_timeout_seconds=settings.body_timeout_seconds,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_headers(scope["headers"], self.limits)
        except LimitExceeded as e:  # every path: no handler sees 20,000 headers
            reason = "too_many_headers" if e.status == 431 else "too_large"
            self.metrics.events_rejected.labels(reason=reason).inc()
            answer = orjson.dumps({"error": e.message, "reason": reason})
            await _send(send, e.status, answer, [(b"connection", b"close")])
            return
        if scope["method"] == "POST" and scope["path"] in PATHS:
            try:
                status, answer, extra = await self._accept(scope, receive)
            except _Disconnected:  # the sender left mid-body: nothing to take, no one to answer
                return
            await _send(send, status, answer, extra)
            return
        await self.app(scope, receive, send)

    async def _accept(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            body = await self._body(scope, receive)
            detector = self.detector()
            content_type = b""
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value.split(b";", 1)[0].strip().lower()
                    break
            if content_type == BATCH.encode():
                return self._batch(detector, body)
            if content_type == STRUCTURED.encode():
                event = structured_event(body)
            else:
                event = binary_event(scope["headers"], body)
            self._check(event)
            if not detector.room(1):
                detector.count_dropped([event])
                return self._full()
            detector.put([event])
            return 200, b'{"status":"accepted","id":' + orjson.dumps(event.id) + b"}", []
        except Ignored as e:
            self.metrics.events_ignored.labels(reason=e.reason).inc()
            return 200, orjson.dumps({"status": "ignored", "reason": e.reason}), []
        except DriftError as e:
            self.metrics.events_rejected.labels(reason=e.reason).inc()
            if e.status_code >= 500:
                log.warning("event refused: %s", e.message)
            else:
                log.info("event rejected (%s): %s", e.reason, e.message)
            extra = [(b"retry-after", b"5")] if e.status_code == 503 else []
            return e.status_code, orjson.dumps({"error": e.message, "reason": e.reason}), extra

    def _batch(self, detector: Detector, body: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        events, problems = batch_events(body)
        good: list[Event] = []
        for index, event in events:
            try:
                self._check(event)
                good.append(event)
            except BadEvent as e:
                problems.append((index, e))
        bad: list[dict[str, Any]] = []
        for index, problem in sorted(problems, key=lambda p: p[0]):
            if isinstance(problem, Ignored):
                self.metrics.events_ignored.labels(reason=problem.reason).inc()
            else:
                self.metrics.events_rejected.labels(reason=problem.reason).inc()
                bad.append({"index": index, "reason": problem.reason, "error": problem.message})
        if good and not detector.room(len(good)):
            detector.count_dropped(good)
            return self._full()
        detector.put(good)
        if not bad:
            return 200, orjson.dumps({"status": "accepted", "events": len(good)}), []
        first = bad[0]
        message = f"event {first['index']}: {first['error']}"
        if len(bad) > 1:
            message += f" (and {len(bad) - 1} more bad event(s))"
        answer = {
            "error": message,
            "reason": first["reason"],
            "accepted": len(good),
            "rejected": bad[:MAX_LISTED],
        }
        log.info("batch: %d event(s) taken, %d rejected: %s", len(good), len(bad), message)
        return 400, orjson.dumps(answer), []

    def _check(self, event: Event) -> None:
        if self.allowed and event.key.inference_service not in self.allowed:
            raise BadEvent(
                f"InferenceService {event.key.inference_service!r} is not watched by this detector "
                f"(DRIFT_INFERENCE_SERVICES: {', '.join(sorted(self.allowed))})",
                reason="unknown_inferenceservice",
            )

    def _full(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        answer = {
            "error": f"the event queue is full (DRIFT_QUEUE_SIZE={self.settings.queue_size}); retry later",
            "reason": "queue_full",
        }
        return 503, orjson.dumps(answer), [(b"retry-after", str(self.settings.retry_after_seconds).encode())]

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        try:
            body = await read_body(receive, self.limits)
        except LimitExceeded as e:
            raise (PayloadTooLarge if e.status == 413 else BodyTimeout)(e.message) from None
        if body is None:
            raise _Disconnected
        return body


async def _send(send: Send, status: int, answer: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(answer)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
