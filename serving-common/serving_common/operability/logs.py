"""The one log format of every component: a JSON object per line (python-json-logger), or plain
text for local use, on stderr. Configured once from ``__main__``, before KServe's ModelServer
(which then keeps it: it only configures a ``kserve`` logger that has no handler).

Every line has ``time``, ``level``, ``logger``, ``message`` and ``component``; a line written
while a request is handled also has ``request_id`` (and ``trace_id`` when the request carried a
W3C ``traceparent``), from the context variables :data:`REQUEST_ID` and :data:`TRACE_ID`, which
the request paths set. ``extra={...}`` fields become keys of the JSON object.
KServe's and uvicorn's loggers write through the same handler; chatty libraries are held at WARNING.
"""

from __future__ import annotations

import logging
import sys
import warnings
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

__all__ = ["NOISY", "REQUEST_ID", "ROUTED", "TRACE_ID", "configure_logging", "configured", "trace_id_of"]

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TRACE_ID: ContextVar[str | None] = ContextVar("trace_id", default=None)

ROUTED = ("kserve", "kserve.trace", "uvicorn", "uvicorn.error", "uvicorn.access")
"""Loggers that libraries configure with handlers of their own: given ours instead."""
NOISY = (
    "httpx",
    "httpcore",
    "urllib3",
    "asyncio",
    "grpc",
    "numba",
    "matplotlib",
    "PIL",
    "h5py",
    "absl",
    "tensorflow",
    "filelock",
    "multipart",
    "python_multipart",
    "fsspec",
)
"""Libraries that log at INFO/DEBUG about their own internals: WARNING and above only."""


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``), else None."""
    if not traceparent:
        return None
    parts = traceparent.strip().split("-")
    if len(parts) >= 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


class _Context(logging.Filter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        trace_id = TRACE_ID.get()
        if trace_id is not None and not hasattr(record, "trace_id"):
            record.trace_id = trace_id
        return True


class _Text(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        settings = getattr(record, "settings", None)
        if isinstance(settings, dict):  # the effective settings, readable in text too
            line += ": " + " ".join(f"{k}={v}" for k, v in settings.items())
        ids = [f"{k}={getattr(record, k)}" for k in ("request_id", "trace_id") if hasattr(record, k)]
        return f"{line} [{' '.join(ids)}]" if ids else line


def _utc(record: logging.LogRecord) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-30T12:17:45.123Z``."""
    return (
        datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class _Json(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)


def _json() -> logging.Formatter:
    return _Json(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


_CONFIGURED: list[logging.Handler] = []


def configured() -> bool:
    """Whether :func:`configure_logging` ran (start-up errors then go through logging)."""
    return bool(_CONFIGURED)


def configure_logging(
    component: str,
    fmt: Literal["json", "text"] = "json",
    level: str = "INFO",
    *,
    quiet: tuple[str, ...] = (),
) -> logging.Handler:
    """Installs the one handler (stderr) on the root logger and on :data:`ROUTED`; returns it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_json() if fmt == "json" else _Text())
    handler.addFilter(_Context(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ROUTED:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler] if name in ("kserve", "uvicorn") else []
        logger.propagate = name not in ("kserve", "uvicorn")
        logger.setLevel(level)
    for name in (*NOISY, *quiet):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn(...) become log lines, not stray stderr text
    # Libraries' deprecation notices are for their callers' developers (tests turn them into
    # errors), not for whoever reads a running service's log.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*deprecated", module=r"fastapi\.")  # a UserWarning there
    _CONFIGURED[:] = [handler]
    return handler
