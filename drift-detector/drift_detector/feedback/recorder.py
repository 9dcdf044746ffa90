"""Predictions recorded off the request path: paired in memory, written in batches by one thread.

The detector's worker calls :meth:`Recorder.request` and :meth:`Recorder.response` for every
decoded inference event (a dict operation each). Request and response are paired on ``ce-id``
(either order, like :mod:`drift_detector.joiner`; unpaired halves are forgotten after
``DRIFT_JOIN_TIMEOUT_SECONDS``); a pair becomes one prediction per row, appended to a batch that
is handed to a single writer thread when it reaches ``DRIFT_FEEDBACK_BATCH_ROWS`` rows or every
``DRIFT_FEEDBACK_FLUSH_SECONDS``. Rows waiting (batched or being written) are bounded by
``DRIFT_FEEDBACK_MAX_PENDING_ROWS``: beyond it predictions are dropped and counted, never the
detector's events. A failed write is logged and counted; the detector goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from drift_detector.cloudevent import Event, StreamKey
from drift_detector.feedback.metrics import FeedbackMetrics
from drift_detector.feedback.store import Store

__all__ = ["Recorder"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Half:
    deadline: float
    key: StreamKey
    rows: np.ndarray | None = None
    scores: np.ndarray | None = None
    answer: tuple[str, str, str] | None = None
    """The answer's ``id``, ``model_name`` and ``model_version`` (empty strings when absent)."""
    at: float = 0.0


class Recorder:
    def __init__(
        self,
        store: Store,
        metrics: FeedbackMetrics,
        *,
        timeout: float,
        capacity: int,
        batch_rows: int,
        flush_seconds: float,
        max_pending_rows: int,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.timeout = timeout
        self.capacity = capacity
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self._halves: dict[str, _Half] = {}
        self._batch: list[tuple[str, _Half]] = []
        self._batch_size = 0
        self._writes: list[tuple[Future[None], int]] = []
        """Batches handed to the writer thread, with their row counts (pruned when done)."""
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback-writer")
        self._last: Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # --- called by the detector's worker (event loop) -------------------------------------------

    def request(self, event: Event, rows: np.ndarray, now: float) -> None:
        half = self._halves.pop(event.id, None)
        if half is not None and half.scores is not None:
            half.rows = rows
            self._pair(event.id, half)
            return
        self._hold(event.id, _Half(now + self.timeout, event.key, rows=rows, at=time.time()))

    def response(self, event: Event, document: Any, scores: np.ndarray, now: float) -> None:
        answer = _answer(document)
        half = self._halves.pop(event.id, None)
        if half is not None and half.rows is not None:
            half.scores, half.answer = scores, answer
            self._pair(event.id, half)
            return
        self._hold(
            event.id, _Half(now + self.timeout, event.key, scores=scores, answer=answer, at=time.time())
        )

    def _hold(self, event_id: str, half: _Half) -> None:
        self._halves[event_id] = half
        while len(self._halves) > self.capacity:
            del self._halves[next(iter(self._halves))]

    def _pair(self, event_id: str, half: _Half) -> None:
        assert half.rows is not None and half.scores is not None
        n = len(half.rows)
        if len(half.scores) != n:
            self.metrics.dropped.labels(reason="row_mismatch").inc(n)
            return
        if not np.isfinite(half.scores).all():  # no score, no quality: the store needs one per row
            self.metrics.dropped.labels(reason="no_score").inc(n)
            return
        if self._batch_size + self.in_flight + n > self.max_pending_rows:
            self.metrics.dropped.labels(reason="backlog").inc(n)
            return
        self._batch.append((event_id, half))
        self._batch_size += n
        if self._batch_size >= self.batch_rows:
            self._submit()

    # --- batches and the writer thread ----------------------------------------------------------

    def _submit(self) -> Future[None] | None:
        if not self._batch:
            return self._last
        batch, size = self._batch, self._batch_size
        self._batch, self._batch_size = [], 0
        future = self._writer.submit(self._write, batch, size)
        self._writes.append((future, size))
        self._last = future
        return future

    @property
    def in_flight(self) -> int:
        """Rows handed to the writer thread and not written yet."""
        self._writes = [(f, n) for f, n in self._writes if not f.done()]
        return sum(n for _, n in self._writes)

    def _write(self, batch: list[tuple[str, _Half]], size: int) -> None:
        records: list[tuple[Any, ...]] = []
        for event_id, half in batch:
            assert half.rows is not None and half.scores is not None
            answer_id, model_name, version = half.answer or ("", "", "")
            key = half.key
            prediction_id = answer_id or event_id
            scores = half.scores.reshape(-1).tolist()
            for row, values in enumerate(half.rows.astype(np.float64)):  # NaN/inf -> null
                score = scores[row]
                records.append(
                    (
                        prediction_id,
                        event_id,
                        row,
                        key.namespace,
                        key.inference_service,
                        key.component,
                        model_name,
                        version,
                        half.at,
                        orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                        score,
                        int(score >= 0.5),
                    )
                )
        try:
            self.store.record_many(records)
        except Exception:
            log.exception("could not record %d prediction(s)", size)
            self.metrics.dropped.labels(reason="store_error").inc(size)
            return
        self.metrics.recorded.inc(size)

    def expire(self, now: float) -> None:
        """Forget halves whose other half did not come in time (the detector counts them)."""
        while self._halves:
            first = next(iter(self._halves))
            if self._halves[first].deadline > now:
                break
            del self._halves[first]

    async def flush(self) -> None:
        """Until every paired prediction so far is written."""
        future = self._submit()
        if future is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(future)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feedback-recorder")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            self.expire(time.monotonic())
            self._submit()
            self.metrics.pending.set(self._batch_size + self.in_flight)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        self._writer.shutdown(wait=True)


def _answer(document: Any) -> tuple[str, str, str]:
    if not isinstance(document, dict):
        return "", "", ""
    values = (document.get("id"), document.get("model_name"), document.get("model_version"))
    return tuple(v if isinstance(v, str) else "" for v in values)  # type: ignore[return-value]
