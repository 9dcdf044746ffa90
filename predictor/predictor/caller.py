"""Who called: ``x-model-serving-caller: explainer`` marks the explainer's perturbation calls.

The label ``caller`` on ``predictor_requests_total`` / ``predictor_request_duration_seconds`` is
bounded to two values: ``explainer`` when the header says exactly that, else ``client``.
Explainer calls are never payload-logged (they are not traffic the drift windows should see).
"""

from __future__ import annotations

from serving_common.headers import CALLER_EXPLAINER, CALLER_HEADER

__all__ = ["CALLER_HEADER", "CLIENT", "EXPLAINER", "caller"]

EXPLAINER = CALLER_EXPLAINER
CLIENT = "client"


def caller(value: object) -> str:
    """The ``caller`` label for the header's value (``None`` when absent)."""
    return EXPLAINER if value == EXPLAINER else CLIENT
