"""The HTTP app: events in at ``POST /``, verdicts out at ``/status`` and ``/metrics``.

Routes: ``POST /`` (also ``POST /events``) takes payload-logger CloudEvents (binary, structured
or batch) and answers at once (:mod:`drift_detector.ingress`, in front of FastAPI);
``GET /status`` the latest verdicts (an HTML page when asked for ``text/html`` or ``?format=html``
and the feedback store is on); ``GET /metrics`` Prometheus; ``GET /live``, ``GET /ready``. With
``DRIFT_FEEDBACK_DB_URL``: the feedback routes and ``GET /quality`` (:mod:`drift_detector.feedback`).

The bundle is loaded and the backends fitted in the background after start-up (Alibi Detect
takes seconds to import): ``/live`` answers at once, ``/ready`` and events wait for the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from drift_detector import __version__
from drift_detector.backends import Backend, make_backend
from drift_detector.detector import Detector, Kind
from drift_detector.drain import Drain
from drift_detector.errors import NotReady
from drift_detector.ingress import Ingress
from drift_detector.metrics import Metrics
from drift_detector.payload import Schema
from drift_detector.reference import Reference
from drift_detector.settings import Settings
from drift_detector.sink import Sink

if TYPE_CHECKING:
    from drift_detector.feedback.service import FeedbackService

__all__ = ["DriftService", "create_app"]

log = logging.getLogger(__name__)


class DriftService:
    """What the routes share: settings, metrics, and (once loaded) the detector."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.detector: Detector | None = None
        self.sink: Sink | None = None
        self.error: str | None = None
        self.drain: Drain | None = None
        """Set by ``__main__`` (``drain.py``): while draining, ``/ready`` is 503, events still taken."""
        self._load_task: asyncio.Task[None] | None = None
        self.feedback: FeedbackService | None = None
        if settings.feedback_db_url:  # imported only when on: SQLAlchemy and Alembic cost start-up time
            from drift_detector.feedback.service import FeedbackService

            self.feedback = FeedbackService(settings, self.metrics.registry)

    async def start(self) -> None:
        self._load_task = asyncio.create_task(self._load(), name="drift-load")

    async def _load(self) -> None:
        s = self.settings
        try:
            reference = await asyncio.to_thread(Reference.load, s.model_dir)
            backends = await asyncio.to_thread(self._fit, reference)
        except Exception as e:
            self.error = f"cannot load the model bundle {str(s.model_dir)!r}: {e}"
            log.error("%s", self.error)
            return
        if s.sink_url:
            self.sink = Sink(s.sink_url, s.sink_mode, s.sink_timeout, self.metrics)
            await self.sink.start()
        schema = Schema(names=reference.names, spec=reference.spec, max_rows=s.max_rows_per_event)
        detector = Detector(s, schema, backends, self.metrics, self.sink, reference.version)
        if self.feedback is not None:
            try:
                detector.recorder = await self.feedback.start()
            except Exception as e:
                self.error = f"cannot open the feedback store: {e}"
                log.error("%s", self.error)
                return
        await detector.start()
        self.detector = detector
        self.metrics.ready.set(1)
        log.info(
            "ready: %d features (%d categorical), %d reference rows, prediction drift %s (model %s), "
            "backend %s, "
            "%s windows of %d rows (step %d), p_val %g with %s correction",
            len(reference.names),
            len(reference.categorical),
            len(reference.features),
            "on" if "prediction" in backends else "off",
            reference.version or "any",
            s.backend,
            s.window_mode,
            s.window_size,
            s.effective_step,
            s.p_val,
            s.correction,
        )

    def _fit(self, reference: Reference) -> dict[Kind, Backend]:
        s = self.settings
        backends: dict[Kind, Backend] = {
            "features": make_backend(
                s.backend,
                reference.features,
                categorical=reference.categorical,
                p_val=s.p_val,
                correction=s.correction,
            )
        }
        if s.prediction_drift and reference.scores is not None:
            backends["prediction"] = make_backend(
                s.backend,
                reference.scores.reshape(-1, 1),
                categorical=(),
                p_val=s.p_val,
                correction=s.correction,
            )
        return backends

    async def stop(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
        if self.detector is not None:
            await self.detector.stop()
        if self.feedback is not None:
            await self.feedback.stop()
        if self.sink is not None:
            await self.sink.stop()

    def ready_detector(self) -> Detector:
        if self.detector is None:
            raise NotReady(self.error or "the drift detector is still loading the model bundle")
        return self.detector


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(settings: Settings) -> Ingress:
    """The ASGI app: the event ingress in front of FastAPI (``app.state.service`` is the service)."""
    service = DriftService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="drift-detector",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths (404) and wrong verbs (405, with ``Allow``) answer ``{"error"}`` like the rest."""
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return Response(
            orjson.dumps({"error": message}),
            status_code=exc.status_code,
            media_type="application/json",
            headers=exc.headers,
        )

    @app.get("/live")
    async def live() -> Response:
        if service.error:
            return _json({"status": "failed", "error": service.error}, 503)
        return _json({"status": "alive"})

    @app.get("/ready")
    async def ready() -> Response:
        if service.detector is None:
            return _json({"status": "failed" if service.error else "loading", "error": service.error}, 503)
        if service.drain is not None and service.drain.draining:
            return _json({"status": "draining", "error": "shutting down"}, 503)
        return _json({"status": "ready"})

    @app.get("/status")
    async def status(request: Request, format: str = "json") -> Response:
        html = format == "html" or "text/html" in request.headers.get("accept", "")
        if html and service.feedback is not None and service.feedback.store is not None:  # the page
            drift = service.detector.status()["streams"] if service.detector is not None else []
            return HTMLResponse(await service.feedback.page(drift))
        s = settings
        body: dict[str, Any] = {
            "ready": service.detector is not None,
            "error": service.error,
            "backend": s.backend,
            "p_val": s.p_val,
            "correction": s.correction,
            "window": {"size": s.window_size, "step": s.effective_step, "mode": s.window_mode},
            "prediction_drift": s.prediction_drift,
        }
        if service.detector is not None:
            # what live traffic is judged against (after a retraining promotion: the new bundle)
            body["reference"] = {"model_dir": str(s.model_dir), "version": service.detector.reference_version}
            body["features"] = list(service.detector.schema.names)
            body.update(service.detector.status())
        if service.feedback is not None:
            body["quality"] = service.feedback.status()
        return _json(body)

    @app.get("/metrics")
    async def metrics() -> Response:
        if service.detector is not None:
            service.metrics.queue_depth.set(service.detector.depth)
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if service.feedback is not None:
        from drift_detector.feedback.api import feedback_router

        app.include_router(feedback_router(service.feedback, service.ready_detector))

    return Ingress(app, settings, service.metrics, service.ready_detector)
