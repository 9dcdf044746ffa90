"""Errors of the drift detector; each carries its HTTP status and a bounded ``reason`` label.

::

    DriftError                      500
    ├── BadEvent                    400   the event or its body cannot be used (reason says why)
    ├── PayloadTooLarge             413
    └── NotReady                    503   the bundle is still loading

The app maps every :class:`DriftError` to ``{"error": message, "reason": reason}`` with its status
and counts it in ``drift_events_rejected_total{reason}``.
"""

from __future__ import annotations

__all__ = ["REASONS", "BadEvent", "DriftError", "NotReady", "PayloadTooLarge"]

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
    "not_ready",
)
"""Every value the ``reason`` label can take (kept small: it is a Prometheus label)."""


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


class NotReady(DriftError):
    status_code = 503
    reason = "not_ready"
