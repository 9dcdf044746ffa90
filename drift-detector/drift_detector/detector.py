"""Per-InferenceService windows, filled off the request path in batches.

The ingress (:mod:`drift_detector.ingress`) only checks an event's envelope and appends it to a
bounded queue (:meth:`Detector.put`). One background task takes the queued events in slices of
at most ``DRIFT_SLICE_SECONDS`` (so the event loop keeps accepting), decodes their bodies,
joins requests with their 200 responses (:mod:`drift_detector.joiner`), adds the admitted rows
of each stream to its windows in one numpy step per slice, and tests each window that becomes
due (a few milliseconds each; a thread would not help on one core, and would hold the GIL).

A stream is one (namespace, InferenceService, component): stable and canary are different
InferenceServices, and a transformer's raw records are never mixed with a predictor's tensors.

Every event that passed the door ends in exactly one of ``drift_events_received_total`` (inference,
decoded), ``drift_events_ignored_total`` (not inference) or ``drift_events_rejected_total`` (its
body cannot be used); a response whose scores cannot be read still admits its request's rows.

Prediction drift compares scores with ``reference_scores.npy``, which describes one model: the
bundle's (its card's ``version``). A response naming another ``model_version`` (a canary running
another model) is not put into the prediction window: its rows are counted in
``drift_rows_skipped_total{kind="prediction", reason="model_version"}`` and ``GET /status`` says
the stream's prediction drift is not applicable. Its request's rows still enter the features
window (input drift does not depend on the model). Responses without a ``model_version`` are
judged as before. The check is one dict lookup per response, on the already parsed body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from drift_detector import body
from drift_detector.backends import Backend, Verdict
from drift_detector.cloudevent import Event, StreamKey
from drift_detector.errors import BadEvent, Ignored
from drift_detector.joiner import Joiner
from drift_detector.metrics import Metrics
from drift_detector.payload import Schema, request_rows, response_scores
from drift_detector.settings import Settings
from drift_detector.sink import Sink
from drift_detector.window import Window

if TYPE_CHECKING:
    from drift_detector.feedback.recorder import Recorder

__all__ = ["Detector", "Kind", "StreamKey"]

log = logging.getLogger(__name__)
Kind = Literal["features", "prediction"]
RECENT_REJECTIONS = 20
_UNTRACKED = StreamKey("", "", "")


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
    model_version: str | None = None
    """``model_version`` of the latest response carrying one."""
    version_skipped: int = 0
    """Prediction rows left out because their ``model_version`` is not the reference's."""
    seen: float = 0.0
    """``time.monotonic()`` of the latest event decoded for this stream (idle expiry)."""


@dataclass
class _Tally:
    """What one slice counted, written to the metrics once per slice (label lookups are costly)."""

    received: dict[tuple[StreamKey, str], int] = field(default_factory=dict)
    joined: dict[StreamKey, int] = field(default_factory=dict)
    staged: dict[tuple[StreamKey, Kind], list[np.ndarray]] = field(default_factory=dict)
    version_skipped: dict[StreamKey, int] = field(default_factory=dict)

    def count(self, key: StreamKey, kind: str) -> None:
        self.received[(key, kind)] = self.received.get((key, kind), 0) + 1

    def admit(self, key: StreamKey, kind: Kind, rows: np.ndarray, joined: bool = False) -> None:
        self.staged.setdefault((key, kind), []).append(rows)
        if joined:
            self.joined[key] = self.joined.get(key, 0) + 1


class Detector:
    def __init__(
        self,
        settings: Settings,
        schema: Schema,
        backends: dict[Kind, Backend],
        metrics: Metrics,
        sink: Sink | None = None,
        reference_version: str | None = None,
    ) -> None:
        self.settings = settings
        self.reference_version = reference_version
        """The model ``reference_scores.npy`` belongs to (model card ``version``); ``None``: any."""
        self.schema = schema
        self.backends = backends
        self.metrics = metrics
        self.sink = sink
        self.streams: dict[StreamKey, Stream] = {}
        self.joiner = Joiner(settings.join_timeout_seconds, settings.pending_joins)
        self.rejections: deque[dict[str, str]] = deque(maxlen=RECENT_REJECTIONS)
        self._queue: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._arrived = 0
        self.recorder: Recorder | None = None
        """The feedback store's recorder (``DRIFT_FEEDBACK_DB_URL``): sees every decoded exchange."""
        """Events put since the worker's last slice began: the least the next slice takes."""
        metrics.queue_capacity.set(settings.queue_size)

    # --- request path (the ingress) -------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self._queue)

    def room(self, n: int) -> bool:
        """Whether ``n`` more events fit in the queue."""
        return len(self._queue) + n <= self.settings.queue_size

    def count_dropped(self, events: list[Event]) -> None:
        """Count events refused because the queue was full, by stream; streams this detector
        would not take (``DRIFT_MAX_INFERENCE_SERVICES``) share empty labels (bounded series)."""
        room = len(self.streams) < self.settings.max_inference_services
        for event in events:
            key = event.key if room or event.key in self.streams else _UNTRACKED
            self.metrics.events_dropped.labels(**key.labels()).inc()

    def put(self, events: list[Event]) -> None:
        """Queue events whose envelope was checked (call :meth:`room` first)."""
        if events:
            self._arrived += len(events)
            self._queue.extend(events)
            self._idle.clear()
            self._wake.set()

    # --- decoding and windows (background) ------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="drift-detection")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await self.wait_idle()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    @property
    def idle(self) -> bool:
        return not self._queue and not self._busy

    async def wait_idle(self) -> None:
        """Until every queued event was decoded and its windows tested (wrap it in a timeout)."""
        await self._idle.wait()

    async def _run(self) -> None:
        sweep = min(1.0, self.settings.join_timeout_seconds / 4)
        next_sweep = time.monotonic() + sweep
        while True:
            if not self._queue:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=sweep)
            now = time.monotonic()
            if now >= next_sweep:
                self._forget(self.joiner.expire(now))
                next_sweep = now + sweep
            if not self._queue:
                continue
            self._busy = True
            try:
                for stream, kind, window in self._slice():
                    self._test(stream, kind, window)
                    await asyncio.sleep(0)  # let the door answer between two tests
            except Exception:  # a bad window must not stop detection
                log.exception("detection failed")
            finally:
                self._busy = False
                if not self._queue:
                    self._idle.set()
            await asyncio.sleep(0)

    def _slice(self) -> list[tuple[Stream, Kind, np.ndarray]]:
        """Decode queued events; the windows that became due.

        A slice takes at least the events that arrived since the previous one began (so the
        worker keeps pace with the door, and closed-loop senders slow down instead of filling
        the queue), and beyond that works off a backlog for ``slice_seconds`` at most.
        """
        clock = time.perf_counter
        deadline = clock() + self.settings.slice_seconds
        least, self._arrived = self._arrived, 0
        tally = _Tally()
        now = time.monotonic()
        queue = self._queue
        done = 0
        while queue:
            done += 1
            event = queue.popleft()
            try:
                self._take(event, tally, now)
            except Ignored as e:
                self.metrics.events_ignored.labels(reason=e.reason).inc()
            except BadEvent as e:
                self._reject(event, e)
            except Exception as e:  # a body no check foresaw must not cost the rest of the slice
                log.exception("event %s could not be read", event.id)
                self._reject(event, BadEvent(f"body could not be read: {e!r}", reason="bad_payload"))
            if done >= least and clock() > deadline:
                break
        self.metrics.queue_depth.set(len(queue))
        wall = time.time()
        for (key, kind), n in tally.received.items():
            self.metrics.events_received.labels(**key.labels(), type=kind).inc(n)
            stream = self.streams.get(key)
            if stream is None:
                continue
            if stream.last_event != wall:
                stream.last_event = wall
                self.metrics.last_event.labels(**key.labels()).set(wall)
        for key, n in tally.joined.items():
            self.metrics.events_joined.labels(**key.labels()).inc(n)
        for key, n in tally.version_skipped.items():
            labels = key.labels()
            self.metrics.rows_skipped.labels(**labels, kind="prediction", reason="model_version").inc(n)
        return self._add(tally.staged)

    def _take(self, event: Event, tally: _Tally, now: float) -> None:
        document = (
            event.data
            if event.body is None
            else body.decode(event.body, self.settings.max_body_bytes, event.header_length)
        )
        if event.kind == "request":
            rows = request_rows(document, self.schema)
            self._stream(event.key)
            if self.recorder is not None:
                self.recorder.request(event, rows, now)
            tally.count(event.key, "request")
            joined, forgotten = self.joiner.request(event.id, event.key, rows, now)
            if forgotten:
                self._forget(forgotten)
            if joined is not None:
                tally.admit(event.key, "features", joined, joined=True)
            return
        error: BadEvent | None = None
        scores: np.ndarray | None = None
        try:
            scores = response_scores(document, self.schema.classes).reshape(-1, 1)
        except Ignored:
            raise
        except BadEvent as e:
            error = e
        stream = self._stream(event.key)
        tally.count(event.key, "response")
        if self.recorder is not None and scores is not None:
            self.recorder.response(event, document, scores, now)
        held = self.joiner.response(event.id, now)
        if held is not None:
            tally.admit(held[0], "features", held[1], joined=True)
        if scores is not None and "prediction" in stream.windows:
            version = document.get("model_version") if isinstance(document, dict) else None
            if version is None:
                tally.admit(event.key, "prediction", scores)
            else:
                version = stream.model_version = str(version)
                if self.reference_version is None or version == self.reference_version:
                    tally.admit(event.key, "prediction", scores)
                else:
                    stream.version_skipped += len(scores)
                    skipped = tally.version_skipped
                    skipped[event.key] = skipped.get(event.key, 0) + len(scores)
        if error is not None:
            raise error

    def _forget(self, keys: list[StreamKey]) -> None:
        for key in keys:
            self.metrics.events_unanswered.labels(**key.labels()).inc()

    def _reject(self, event: Event, error: BadEvent) -> None:
        self.metrics.events_rejected.labels(reason=error.reason).inc()
        self.rejections.append(
            {
                "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "id": event.id,
                "type": event.kind,
                "inferenceservice": event.key.inference_service,
                "reason": error.reason,
                "error": error.message,
            }
        )
        log.info("event %s (%s) rejected (%s): %s", event.id, event.kind, error.reason, error.message)

    def _add(
        self, staged: dict[tuple[StreamKey, Kind], list[np.ndarray]]
    ) -> list[tuple[Stream, Kind, np.ndarray]]:
        due: list[tuple[Stream, Kind, np.ndarray]] = []
        for (key, kind), parts in staged.items():
            stream = self.streams.get(key)
            if stream is None:  # expired within this slice
                continue
            rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
            finite = np.isfinite(rows).all(axis=1)
            labels = {**key.labels(), "kind": kind}
            if not finite.all():
                skipped = int((~finite).sum())
                self.metrics.rows_skipped.labels(**labels, reason="not_finite").inc(skipped)
                rows = rows[finite]
            if not len(rows):
                continue
            self.metrics.rows_received.labels(**labels).inc(len(rows))
            due.extend((stream, kind, window) for window in stream.windows[kind].add(rows))
        return due

    def _stream(self, key: StreamKey) -> Stream:
        now = time.monotonic()
        stream = self.streams.get(key)
        if stream is not None:
            stream.seen = now
            return stream
        if len(self.streams) >= self.settings.max_inference_services:
            self._expire(now)
        if len(self.streams) >= self.settings.max_inference_services:
            raise BadEvent(
                f"already tracking {len(self.streams)} InferenceService streams, none idle for "
                f"{self.settings.stream_idle_seconds:g} s (DRIFT_MAX_INFERENCE_SERVICES, "
                f"DRIFT_STREAM_IDLE_SECONDS); {key.inference_service!r} is not taken",
                reason="too_many_inferenceservices",
            )
        size, step = self.settings.window_size, self.settings.effective_step
        windows: dict[Kind, Window] = {"features": Window(size, step, self.schema.n_features)}
        if "prediction" in self.backends:
            windows["prediction"] = Window(size, step, 1)
        stream = Stream(key=key, windows=windows, seen=now)
        self.streams[key] = stream
        labels = key.labels()
        for kind in windows:
            self.metrics.windows_evaluated.labels(**labels, kind=kind)
            self.metrics.windows_drifted.labels(**labels, kind=kind)
            self.metrics.rows_received.labels(**labels, kind=kind)
            self.metrics.rows_skipped.labels(**labels, kind=kind, reason="not_finite")
        if "prediction" in windows:
            self.metrics.rows_skipped.labels(**labels, kind="prediction", reason="model_version")
        self.metrics.events_dropped.labels(**labels)
        self.metrics.events_joined.labels(**labels)
        self.metrics.events_unanswered.labels(**labels)
        return stream

    def _expire(self, now: float) -> None:
        """Free the slots of streams without an event for ``DRIFT_STREAM_IDLE_SECONDS`` (their series
        go too), so names seen once (a junk ``ce-inferenceservicename``) cannot hold slots forever."""
        cutoff = now - self.settings.stream_idle_seconds
        for key in [k for k, s in self.streams.items() if s.seen <= cutoff]:
            del self.streams[key]
            self.metrics.forget_stream(key.labels())
            idle = self.settings.stream_idle_seconds
            log.info("stream %s expired after %g s without events", key.labels(), idle)

    def _test(self, stream: Stream, kind: Kind, window: np.ndarray) -> None:
        """Test one window, on the event loop: a window costs a few milliseconds, and while it
        runs the door does not accept, which slows closed-loop senders down (backpressure)
        instead of letting them fill the queue."""
        backend = self.backends[kind]
        started = time.perf_counter()
        try:
            verdict = backend.test(window)
        except Exception:
            self.metrics.detection_errors.labels(kind=kind).inc()
            log.exception("%s test failed for %s", kind, stream.key)
            return
        self.metrics.detection_seconds.labels(kind=kind).observe(time.perf_counter() - started)
        self._record(stream, kind, verdict, len(window))

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

    def _applicable(self, stream: Stream) -> str:
        """Whether the stream's prediction drift is judged, in words (``GET /status``)."""
        if "prediction" not in stream.windows:
            return "off: no reference scores (or DRIFT_PREDICTION_DRIFT=false)"
        ref = self.reference_version
        if ref is None:
            return "judged against the bundle's reference scores (the model card names no version)"
        if stream.model_version is not None and stream.model_version != ref:
            return f"not applicable: model_version {stream.model_version}, reference {ref}"
        return f"judged against reference {ref}"

    def status(self) -> dict[str, Any]:
        return {
            "queue": {"depth": len(self._queue), "capacity": self.settings.queue_size, "idle": self.idle},
            "joins": {
                "held_requests": self.joiner.held,
                "timeout_seconds": self.settings.join_timeout_seconds,
            },
            "rejections": list(self.rejections),
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
                    "model_version": s.model_version,
                    "prediction_drift": self._applicable(s),
                    "prediction_rows_skipped_model_version": s.version_skipped,
                }
                for s in self.streams.values()
            ],
        }
