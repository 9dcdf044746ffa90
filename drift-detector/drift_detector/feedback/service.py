"""The feedback service inside the drift detector: store, recorder, feedback joins, live quality.

:class:`FeedbackService` opens the store (migrating it), runs the :class:`Recorder` the
detector's worker feeds, applies feedback pairs (:meth:`apply`), and every
``DRIFT_QUALITY_INTERVAL_SECONDS`` computes each stream's quality over the window and applies
retention (``DRIFT_FEEDBACK_RETENTION_DAYS``, ``DRIFT_FEEDBACK_MAX_PREDICTIONS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from drift_detector.cloudevent import StreamKey
from drift_detector.feedback.labelling import label_pairs
from drift_detector.feedback.metrics import QUALITY, FeedbackMetrics
from drift_detector.feedback.page import render
from drift_detector.feedback.pairs import Outcome, Pair
from drift_detector.feedback.quality import quality
from drift_detector.feedback.recorder import Recorder
from drift_detector.feedback.store import Store
from drift_detector.reference import Reference
from drift_detector.settings import Settings

__all__ = ["FeedbackService"]

log = logging.getLogger(__name__)
PURGE_EVERY = 3600.0
PAGE_ROWS = 500
"""Recent predictions per stream drawn against the reference on the status page."""
HISTORY_BUCKETS = 12


class FeedbackService:
    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        assert settings.feedback_db_url is not None
        self.settings = settings
        self.url = settings.feedback_db_url
        self.metrics = FeedbackMetrics(registry)
        self.store: Store | None = None
        self.recorder: Recorder | None = None
        self.latest: list[dict[str, Any]] = []
        self.reference = _model_card_metrics(settings.model_dir)
        for name, value in self.reference.items():
            self.metrics.reference.labels(metric=name).set(value)
        self._task: asyncio.Task[None] | None = None
        self.history: dict[str, list[tuple[float, float]]] = {}
        """Per stream, accuracy per time bucket of the window (the status page's chart)."""
        self._reference: Reference | None = None

    async def start(self) -> Recorder:
        s = self.settings
        self.store = await asyncio.to_thread(Store.open, self.url)
        self._reference = await asyncio.to_thread(Reference.load, s.model_dir)
        self.recorder = Recorder(
            self.store,
            self.metrics,
            timeout=s.join_timeout_seconds,
            capacity=s.pending_joins,
            batch_rows=s.feedback_batch_rows,
            flush_seconds=s.feedback_flush_seconds,
            max_pending_rows=s.feedback_max_pending_rows,
        )
        await self.recorder.start()
        self._task = asyncio.create_task(self._run(), name="feedback-quality")
        log.info(
            "feedback store open (%s), retention %g days",
            self.store.engine.url.render_as_string(),
            s.feedback_retention_days,
        )
        return self.recorder

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.recorder is not None:
            await self.recorder.stop()
        if self.store is not None:
            self.store.close()

    # --- feedback -------------------------------------------------------------------------------

    def apply(self, model: str, pairs: Sequence[Pair], classes: Sequence[str]) -> list[Outcome]:
        """Label the predictions the pairs name (blocking: run it in a thread)."""
        assert self.store is not None
        outcomes = label_pairs(self.store, model, pairs, classes, self.settings.feedback_retention_days)
        for outcome in outcomes:
            self.metrics.pairs.labels(outcome=outcome.outcome).inc()
        return outcomes

    # --- quality and retention ------------------------------------------------------------------

    async def _run(self) -> None:
        next_purge = 0.0
        while True:
            now = time.time()
            try:
                if now >= next_purge:
                    await asyncio.to_thread(self._purge, now)
                    next_purge = now + PURGE_EVERY
                await self.evaluate()
            except Exception:
                self.metrics.errors.inc()
                log.exception("quality evaluation failed")
            await asyncio.sleep(self.settings.quality_interval_seconds)

    def _purge(self, now: float) -> None:
        assert self.store is not None
        s = self.settings
        self.store.purge(now - s.feedback_retention_days * 86400, s.feedback_max_predictions)

    async def evaluate(self) -> list[dict[str, Any]]:
        """Compute every stream's quality over the window now (and export it)."""
        assert self.store is not None
        s = self.settings
        now = time.time()
        windows = await asyncio.to_thread(
            self.store.windows, now - s.quality_window_seconds, s.quality_window_size
        )
        latest: list[dict[str, Any]] = []
        history: dict[str, list[tuple[float, float]]] = {}
        for w in windows:
            history[_stream_name(w.inferenceservice, w.component)] = _buckets(
                w.times, w.labels == w.predicted
            )
            labels = StreamKey(w.namespace, w.inferenceservice, w.component).labels()
            values = quality(w.labels, w.scores, w.predicted)
            for name in QUALITY:
                self.metrics.quality[name].labels(**labels).set(values[name])
            n = len(w.labels)
            coverage = n / w.predictions if w.predictions else float("nan")
            delay = float(np.median(w.delays)) if n else float("nan")
            self.metrics.labelled.labels(**labels).set(n)
            self.metrics.predictions.labels(**labels).set(w.predictions)
            self.metrics.coverage.labels(**labels).set(coverage)
            self.metrics.delay.labels(**labels).set(delay)
            latest.append(
                {
                    "inferenceservice": w.inferenceservice,
                    "namespace": w.namespace,
                    "component": w.component,
                    "predictions": w.predictions,
                    "labelled": n,
                    "label_coverage": _finite(coverage),
                    "label_delay_seconds": _finite(delay),
                    "metrics": {k: _finite(v) for k, v in values.items()},
                }
            )
        self.metrics.evaluated.set(now)
        self.latest = latest
        self.history = history
        return latest

    async def page(self, drift: list[dict[str, Any]]) -> str:
        """The HTML status page (:mod:`drift_detector.feedback.page`)."""
        assert self.store is not None and self._reference is not None
        reference = self._reference
        streams = [(s["namespace"], s["inferenceservice"], s["component"]) for s in self.latest]
        recent = await asyncio.to_thread(self.store.recent_features, streams, PAGE_ROWS)
        categories: dict[int, list[str]] = {}
        if reference.spec is not None:
            for i, feature in enumerate(reference.spec.features):
                if feature.categories:
                    categories[i] = list(feature.categories)
        return render(
            names=reference.names,
            categories=categories,
            reference=reference.features,
            recent={_stream_name(isvc, component): rows for (_, isvc, component), rows in recent.items()},
            quality=self.status(),
            history=self.history,
            drift=drift,
        )

    def status(self) -> dict[str, Any]:
        s = self.settings
        return {
            "window_seconds": s.quality_window_seconds,
            "window_size": s.quality_window_size,
            "model_card": self.reference,
            "streams": self.latest,
        }


def _stream_name(isvc: str, component: str) -> str:
    return f"{isvc} ({component})" if component else isvc


def _buckets(times: np.ndarray, correct: np.ndarray, n: int = HISTORY_BUCKETS) -> list[tuple[float, float]]:
    """Accuracy per time bucket (``n`` buckets from the first to the last labelled prediction)."""
    if not len(times):
        return []
    edges = np.linspace(times.min(), times.max() + 1e-6, n + 1)
    index = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, n - 1)
    out = []
    for b in range(n):
        mask = index == b
        if mask.any():
            out.append((float(times[mask].mean()), float(correct[mask].mean())))
    return out


def _finite(value: float) -> float | None:
    return None if value != value else float(value)


def _model_card_metrics(model_dir: Path) -> dict[str, float]:
    try:
        card = json.loads((model_dir / "model_card.json").read_text())
    except (OSError, ValueError):
        return {}
    metrics = card.get("metrics") if isinstance(card, dict) else None
    if not isinstance(metrics, dict):
        return {}
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
