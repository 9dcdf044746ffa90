"""Feedback routes: ``POST /v1/models/NAME:feedback``, ``POST /v2/models/NAME/feedback``, ``GET /quality``,
``GET /labelled`` (the labelled predictions, for retraining).

Answers: ``200`` every pair was taken; ``422`` some pairs were refused (the good ones are taken)
and each pair's outcome says why; ``400`` the body is not a list of pairs (nothing taken), the
message naming the field; ``413`` more than ``DRIFT_FEEDBACK_MAX_PAIRS`` pairs or a body over
``DRIFT_MAX_BODY_BYTES``; ``503`` the
detector or store is not ready. V1 answers ``{"model_name", "accepted", "rejected", "results":
[{"index", "id", "outcome", "labelled" | "error"}]}`` (``error`` at the top names the first
refused pair); V2 answers a V2 response whose outputs ``outcome``, ``labelled`` and ``error`` have
one value per pair.

Before pairs are looked up, the events already queued are decoded and the paired predictions
written (bounded wait), so feedback sent right after an answer finds its prediction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from drift_detector.detector import Detector
from drift_detector.errors import NotReady
from drift_detector.feedback.pairs import Malformed, Outcome, Pair, v1_pairs, v2_pairs
from drift_detector.feedback.service import FeedbackService

__all__ = ["feedback_router"]

SETTLE_SECONDS = 2.0
"""Longest wait for queued events to be decoded and recorded before pairs are looked up."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def feedback_router(service: FeedbackService, detector: Callable[[], Detector]) -> APIRouter:
    router = APIRouter()

    async def take(
        name: str, request: Request, parse: Callable[[Any], list[Pair]]
    ) -> tuple[int, list[Outcome]] | Response:
        try:
            ready = detector()
        except NotReady as e:
            return _json({"error": e.message, "reason": "not_ready"}, 503)
        if service.recorder is None:
            return _json({"error": "the feedback store is still opening", "reason": "not_ready"}, 503)
        limit_bytes = service.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit_bytes:
            return _too_large(f"feedback body of {declared} bytes exceeds DRIFT_MAX_BODY_BYTES={limit_bytes}")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit_bytes:
                return _too_large(f"feedback body exceeds DRIFT_MAX_BODY_BYTES={limit_bytes}")
        try:
            pairs = parse(orjson.loads(bytes(raw)))
        except orjson.JSONDecodeError as e:
            return _json({"error": f"feedback body is not JSON: {e}", "reason": "malformed"}, 400)
        except Malformed as e:
            return _json({"error": str(e), "reason": "malformed"}, 400)
        limit = service.settings.feedback_max_pairs
        if len(pairs) > limit:
            return _too_large(f"{len(pairs)} pairs exceed DRIFT_FEEDBACK_MAX_PAIRS={limit}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_SECONDS):
                await ready.wait_idle()
                await service.recorder.flush()
        outcomes = await asyncio.to_thread(service.apply, name, pairs, ready.schema.classes)
        refused = sum(o.outcome != "accepted" for o in outcomes)
        return (422 if refused else 200), outcomes

    @router.post("/v1/models/{name}:feedback")
    async def v1_feedback(name: str, request: Request) -> Response:
        result = await take(name, request, v1_pairs)
        if isinstance(result, Response):
            return result
        status, outcomes = result
        body: dict[str, Any] = {
            "model_name": name,
            "accepted": sum(o.outcome == "accepted" for o in outcomes),
            "rejected": sum(o.outcome != "accepted" for o in outcomes),
            "results": [o.doc() for o in outcomes],
        }
        if status != 200:
            body["error"] = _summary(outcomes)
        return _json(body, status)

    @router.post("/v2/models/{name}/feedback")
    async def v2_feedback(name: str, request: Request) -> Response:
        result = await take(name, request, v2_pairs)
        if isinstance(result, Response):
            return result
        status, outcomes = result
        n = len(outcomes)
        body: dict[str, Any] = {
            "model_name": name,
            "id": str(uuid.uuid4()),
            "outputs": [
                {"name": "outcome", "datatype": "BYTES", "shape": [n], "data": [o.outcome for o in outcomes]},
                {
                    "name": "labelled",
                    "datatype": "INT64",
                    "shape": [n],
                    "data": [o.labelled for o in outcomes],
                },
                {"name": "error", "datatype": "BYTES", "shape": [n], "data": [o.error for o in outcomes]},
            ],
            "parameters": {
                "accepted": sum(o.outcome == "accepted" for o in outcomes),
                "rejected": sum(o.outcome != "accepted" for o in outcomes),
            },
        }
        if status != 200:
            body["error"] = _summary(outcomes)
        return _json(body, status)

    @router.get("/labelled")
    async def labelled(
        since: float = 0.0,
        until: float | None = None,
        inferenceservice: str | None = None,
        limit: int = 10_000,
        after: int = 0,
    ) -> Response:
        """Labelled predictions for retraining: features as logged (spec order, encoded; ``null`` =
        missing), label and predicted class as class names, in recording order; page on with
        ``after`` = the answer's ``next_after`` (``null`` on the last page)."""
        if service.store is None:
            return _json({"error": "the feedback store is still opening", "reason": "not_ready"}, 503)
        if not 1 <= limit <= 100_000:
            return _json({"error": f"'limit' must be 1..100000, not {limit}", "reason": "malformed"}, 400)
        classes = detector().schema.classes
        rows = await asyncio.to_thread(service.store.labelled, since, until, inferenceservice, limit, after)

        def name(index: int) -> str | int:
            return classes[index] if 0 <= index < len(classes) else index

        body = {
            "features": list(detector().schema.names),
            "classes": list(classes),
            "count": len(rows),
            "next_after": rows[-1]["pk"] if len(rows) == limit else None,
            "rows": [
                {
                    "id": r["prediction_id"],
                    "row": r["row"],
                    "inferenceservice": r["inferenceservice"],
                    "namespace": r["namespace"],
                    "component": r["component"],
                    "model_version": r["model_version"],
                    "predicted_at": r["predicted_at"],
                    "labelled_at": r["labelled_at"],
                    "features": orjson.loads(r["features"]),
                    "score": r["score"],
                    "predicted": name(r["predicted"]),
                    "label": name(r["label"]),
                }
                for r in rows
            ],
        }
        return _json(body)

    @router.get("/quality")
    async def quality(refresh: bool = False) -> Response:
        if service.store is None:
            return _json({"error": "the feedback store is still opening", "reason": "not_ready"}, 503)
        if refresh:
            await service.evaluate()
        return _json(service.status())

    return router


def _too_large(message: str) -> Response:
    return _json({"error": message, "reason": "too_large"}, 413)


def _summary(outcomes: Sequence[Outcome]) -> str:
    refused = [o for o in outcomes if o.outcome != "accepted"]
    message = refused[0].error
    if len(refused) > 1:
        message += f" (and {len(refused) - 1} more refused pair(s))"
    return message
