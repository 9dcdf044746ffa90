"""Errors of the local stack; each is reported as one clear line and exit status 1.

StackError
├── ChartError        helm failed, or the render lacks what the stack needs
├── TranslateError    a VirtualService field the Envoy translator does not support
└── ProcessError      a process did not start, became FATAL, or was not ready in time
"""

from __future__ import annotations

__all__ = ["ChartError", "ProcessError", "StackError", "TranslateError"]


class StackError(Exception):
    """Base of every error ``python -m local_stack`` reports."""


class ChartError(StackError):
    pass


class TranslateError(StackError):
    pass


class ProcessError(StackError):
    pass
