"""Errors of the drift detector; each carries its HTTP status and a bounded ``reason`` label.

::

    DriftError                      500
    ├── BadEvent                    400   the event or its body cannot be used (reason says why)
    │   └── Ignored                 ---   not inference traffic: counted as ignored, never rejected
    ├── PayloadTooLarge             413
    ├── BodyTimeout                 408   body not complete within DRIFT_BODY_TIMEOUT_SECONDS
    └── NotReady                    503   the bundle is still loading

The app maps every :class:`DriftError` to ``{"error": message, "reason": reason}`` with its status
and counts it in ``drift_events_rejected_total{reason}``. Problems found in a body after the
event was accepted (the worker decodes off the request path) are counted the same way, logged,
and listed under ``rejections`` in ``GET /status``. :class:`Ignored` is raised for traffic that
is not inference (``IGNORED`` reasons), counted in ``drift_events_ignored_total{reason}``.
"""

from __future__ import annotations

__all__ = [
    "IGNORED",
    "REASONS",
    "BadEvent",
    "BodyTimeout",
    "DriftError",
    "Ignored",
    "NotReady",
    "PayloadTooLarge",
]

REASONS = (
    "malformed_event",
    "unknown_type",
    "not_json",
    "bad_payload",
    "wrong_feature_count",
    "invalid_records",
    "unknown_inferenceservice",
    "too_many_inferenceservices",
    "too_large",
    "too_many_headers",
    "timeout",
    "not_ready",
)
"""Every value the ``reason`` label can take (kept small: it is a Prometheus label)."""

IGNORED = ("empty", "not_inference", "explainer")
"""Reasons for ignoring an event: an empty body (GET traffic the agent logs), an answer that is no
inference (readiness, metadata), a call marked by the explainer (``ce-metadata``)."""


class DriftError(Exception):
    status_code = 500
    reason = "internal"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadEvent(DriftError):
    status_code = 400
    reason = "malformed_event"


class PayloadTooLarge(DriftError):
    status_code = 413
    reason = "too_large"


class BodyTimeout(DriftError):
    status_code = 408
    reason = "timeout"


class NotReady(DriftError):
    status_code = 503
    reason = "not_ready"


class Ignored(BadEvent):
    """Not inference traffic: answered 200 (or skipped by the worker) and counted as ignored."""

    status_code = 200
    reason = "empty"
