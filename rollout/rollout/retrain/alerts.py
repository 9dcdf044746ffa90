"""What starts a run: a firing drift/quality alert from Alertmanager, or the detector's drift CloudEvent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_ALERTS", "DRIFT_EVENT_TYPES", "Reason", "from_alertmanager", "from_cloudevent"]

DEFAULT_ALERTS = frozenset(
    {
        "ModelDriftPersistent",
        "ModelAccuracyBelowModelCard",
        "ModelRocAucBelowModelCard",
    }
)
DRIFT_EVENT_TYPES = frozenset({"org.kubeflow.serving.drift.detected"})
"""The drift detector's sink (``drift_detector.sink``): body = the verdict, ``drift`` true."""


class PayloadError(ValueError):
    """The notification is not one we understand; the message names the field."""


@dataclass(frozen=True)
class Reason:
    source: str
    """``alertmanager`` or ``cloudevent``."""
    name: str
    """The alert name or the event type."""
    inferenceservice: str | None


def from_alertmanager(body: Any, alerts: frozenset[str]) -> list[Reason]:
    """The firing alerts of an Alertmanager webhook (version 4) whose name is in ``alerts``."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise PayloadError("an Alertmanager webhook body needs 'alerts': a list")
    out = []
    for i, alert in enumerate(body["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise PayloadError(f"alerts[{i}] needs 'labels': an object")
        labels = alert["labels"]
        if alert.get("status", body.get("status")) != "firing" or labels.get("alertname") not in alerts:
            continue
        isvc = labels.get("inferenceservice")
        out.append(Reason("alertmanager", str(labels["alertname"]), str(isvc) if isvc else None))
    return out


def from_cloudevent(headers: dict[str, str], body: Any) -> list[Reason]:
    """The detector's drift notification, binary (``ce-type`` header) or structured mode."""
    ce_type = headers.get("ce-type")
    data = body
    if ce_type is None and isinstance(body, dict):
        ce_type, data = body.get("type"), body.get("data")
    if not ce_type:
        raise PayloadError("a CloudEvent needs a type ('ce-type' header or 'type')")
    if ce_type not in DRIFT_EVENT_TYPES:
        return []
    if isinstance(data, dict) and data.get("drift") is False:
        return []
    isvc = (data or {}).get("inferenceservice") if isinstance(data, dict) else None
    isvc = isvc or headers.get("ce-inferenceservicename")
    return [Reason("cloudevent", str(ce_type), str(isvc) if isvc else None)]
