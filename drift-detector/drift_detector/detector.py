"""Per-InferenceService windows, tested off the request path.

The app calls :meth:`Detector.admit` for every valid event (cheap: decode rows or scores, then
``put_nowait`` on a bounded queue; a full queue drops and counts). One background task takes
events from the queue, adds their rows to the stream's windows, and tests each window that
becomes due on a worker thread, so the event loop keeps answering events.

A stream is one (namespace, InferenceService, component): stable and canary are different
InferenceServices, and a transformer's raw records are never mixed with a predictor's tensors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from drift_detector.backends import Backend, Verdict
from drift_detector.cloudevent import Event
from drift_detector.errors import BadEvent
from drift_detector.metrics import Metrics
from drift_detector.payload import Schema, request_rows, response_scores
from drift_detector.settings import Settings
from drift_detector.sink import Sink
from drift_detector.window import Window

__all__ = ["Detector", "StreamKey"]

log = logging.getLogger(__name__)
Kind = Literal["features", "prediction"]


@dataclass(frozen=True)
class StreamKey:
    namespace: str
    inference_service: str
    component: str

    def labels(self) -> dict[str, str]:
        return {
            "inferenceservice": self.inference_service,
            "isvc_namespace": self.namespace,
            "isvc_component": self.component,
        }


@dataclass
class Stream:
    key: StreamKey
    windows: dict[Kind, Window]
    evaluated: dict[Kind, int] = field(default_factory=lambda: {"features": 0, "prediction": 0})
    drifted: dict[Kind, int] = field(default_factory=lambda: {"features": 0, "prediction": 0})
    latest: dict[Kind, dict[str, Any] | None] = field(
        default_factory=lambda: {"features": None, "prediction": None}
    )
    last_event: float = 0.0


@dataclass(frozen=True)
class _Item:
    key: StreamKey
    kind: Kind
    rows: np.ndarray


class Detector:
    def __init__(
        self,
        settings: Settings,
        schema: Schema,
        backends: dict[Kind, Backend],
        metrics: Metrics,
        sink: Sink | None = None,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.backends = backends
        self.metrics = metrics
        self.sink = sink
        self.streams: dict[StreamKey, Stream] = {}
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=settings.queue_size)
        self._pending: OrderedDict[str, tuple[StreamKey, str]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        metrics.queue_capacity.set(settings.queue_size)

    # --- request path ---------------------------------------------------------------------------

    def admit(self, event: Event) -> bool:
        """Validate and queue one event; ``False`` when the queue was full (dropped, counted)."""
        allowed = self.settings.inference_services
        if allowed and event.inference_service not in allowed:
            raise BadEvent(
                f"InferenceService {event.inference_service!r} is not watched by this detector "
                f"(DRIFT_INFERENCE_SERVICES: {', '.join(allowed)})",
                reason="unknown_inferenceservice",
            )
        if event.kind == "request":
            kind: Kind = "features"
            rows = request_rows(event.data, self.schema)
        else:
            kind = "prediction"
            rows = response_scores(event.data, self.schema.classes).reshape(-1, 1)
        key = StreamKey(event.namespace, event.inference_service, event.component)
        stream = self._stream(key)
        labels = key.labels()
        self.metrics.events_received.labels(**labels, type=event.kind).inc()
        stream.last_event = time.time()
        self.metrics.last_event.labels(**labels).set(stream.last_event)
        self._join(event, key)
        if kind not in stream.windows:  # prediction drift off, or no reference scores
            return True
        try:
            self.queue.put_nowait(_Item(key, kind, rows))
        except asyncio.QueueFull:
            self.metrics.events_dropped.labels(**labels).inc()
            return False
        return True

    def _stream(self, key: StreamKey) -> Stream:
        stream = self.streams.get(key)
        if stream is not None:
            return stream
        if len(self.streams) >= self.settings.max_inference_services:
            raise BadEvent(
                f"already tracking {len(self.streams)} InferenceService streams "
                f"(DRIFT_MAX_INFERENCE_SERVICES); {key.inference_service!r} is not taken",
                reason="too_many_inferenceservices",
            )
        size, step = self.settings.window_size, self.settings.effective_step
        windows: dict[Kind, Window] = {"features": Window(size, step, self.schema.n_features)}
        if "prediction" in self.backends:
            windows["prediction"] = Window(size, step, 1)
        stream = Stream(key=key, windows=windows)
        self.streams[key] = stream
        for kind in windows:
            labels = {**key.labels(), "kind": kind}
            self.metrics.windows_evaluated.labels(**labels)
            self.metrics.windows_drifted.labels(**labels)
        self.metrics.events_dropped.labels(**key.labels())
        return stream

    def _join(self, event: Event, key: StreamKey) -> None:
        """Pair request and response by ``ce-id``, whichever arrives first (senders run in parallel)."""
        other = self._pending.get(event.id)
        if other is not None and other[1] != event.kind:
            del self._pending[event.id]
            self.metrics.events_joined.labels(**key.labels()).inc()
            return
        self._pending[event.id] = (key, event.kind)
        self._pending.move_to_end(event.id)
        while len(self._pending) > self.settings.pending_joins:
            self._pending.popitem(last=False)

    # --- detection (background) -----------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="drift-detection")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout=drain_timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    @property
    def idle(self) -> bool:
        return self.queue.empty() and not self._busy

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            self._busy = True
            try:
                self.metrics.queue_depth.set(self.queue.qsize())
                await self._process(item)
            except Exception:  # a bad window must not stop detection
                log.exception("detection failed for %s", item.key)
            finally:
                self._busy = False
                self.queue.task_done()

    async def _process(self, item: _Item) -> None:
        stream = self.streams[item.key]
        labels = item.key.labels()
        self.metrics.rows_received.labels(**labels, kind=item.kind).inc(len(item.rows))
        for window in stream.windows[item.kind].add(item.rows):
            backend = self.backends[item.kind]
            started = time.perf_counter()
            try:
                verdict = await asyncio.to_thread(backend.test, window)
            except Exception:
                self.metrics.detection_errors.labels(kind=item.kind).inc()
                log.exception("%s test failed for %s", item.kind, item.key)
                continue
            self.metrics.detection_seconds.labels(kind=item.kind).observe(time.perf_counter() - started)
            self._record(stream, item.kind, verdict, len(window))

    def _record(self, stream: Stream, kind: Kind, verdict: Verdict, rows: int) -> None:
        labels = stream.key.labels()
        names = self.schema.names if kind == "features" else ("prediction",)
        stream.evaluated[kind] += 1
        self.metrics.windows_evaluated.labels(**labels, kind=kind).inc()
        if verdict.drift:
            stream.drifted[kind] += 1
            self.metrics.windows_drifted.labels(**labels, kind=kind).inc()
        self.metrics.drift_detected.labels(**labels, kind=kind).set(1 if verdict.drift else 0)
        self.metrics.threshold.labels(**labels, kind=kind).set(verdict.threshold)
        flags = verdict.feature_drift
        for name, p, d, flag in zip(names, verdict.p_values, verdict.distances, flags, strict=True):
            self.metrics.p_value.labels(**labels, feature=name).set(float(p))
            self.metrics.distance.labels(**labels, feature=name).set(float(d))
            self.metrics.feature_drifted.labels(**labels, feature=name).set(1 if flag else 0)
        summary: dict[str, Any] = {
            "inferenceservice": stream.key.inference_service,
            "namespace": stream.key.namespace,
            "component": stream.key.component,
            "kind": kind,
            "drift": verdict.drift,
            "window": stream.evaluated[kind],
            "rows": rows,
            "threshold": verdict.threshold,
            "p_values": {n: float(p) for n, p in zip(names, verdict.p_values, strict=True)},
            "distances": {n: float(d) for n, d in zip(names, verdict.distances, strict=True)},
            "drifted_features": [n for n, f in zip(names, flags, strict=True) if f],
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        stream.latest[kind] = summary
        if verdict.drift:
            log.warning(
                "drift in %s of %s/%s (%s), window %d: %s",
                kind,
                stream.key.namespace,
                stream.key.inference_service,
                stream.key.component,
                stream.evaluated[kind],
                ", ".join(summary["drifted_features"]),
            )
            if self.sink is not None:
                self.sink.notify(summary)

    # --- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "queue": {"depth": self.queue.qsize(), "capacity": self.settings.queue_size, "idle": self.idle},
            "streams": [
                {
                    "inferenceservice": s.key.inference_service,
                    "namespace": s.key.namespace,
                    "component": s.key.component,
                    "rows_buffered": {k: w.buffered for k, w in s.windows.items()},
                    "rows_seen": {k: w.rows_seen for k, w in s.windows.items()},
                    "windows_evaluated": dict(s.evaluated),
                    "windows_drifted": dict(s.drifted),
                    "last_event": datetime.fromtimestamp(s.last_event, UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "features": s.latest["features"],
                    "prediction": s.latest["prediction"],
                }
                for s in self.streams.values()
            ],
        }
