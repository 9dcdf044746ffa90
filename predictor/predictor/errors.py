"""Errors of the predictor; their codes come from the one status table of the KServe-based
components (``serving_common.framework.status``).

Exception tree (client mistakes use KServe's own types, so KServe's REST handlers and gRPC
interceptor already give them the standard codes)::

    kserve.errors.InvalidInput          400 / INVALID_ARGUMENT   bad request (see signature.py)
    kserve.errors.ModelNotFound         404 / NOT_FOUND          unknown model name
    kserve.errors.ModelNotReady         503 / UNAVAILABLE        not loaded
    NotImplementedError                 501 / UNIMPLEMENTED      e.g. model versions
    PredictorError                      500 / INTERNAL           our own failure
      InjectedFault                                              PREDICTOR_FAULT_ERROR_RATE (tests)
"""

from __future__ import annotations

from kserve.errors import InvalidInput
from serving_common.framework.status import grpc_code, http_status

__all__ = ["InjectedFault", "PredictorError", "grpc_code", "http_status", "invalid"]


class PredictorError(RuntimeError):
    """A failure on the server's side."""


class InjectedFault(PredictorError):
    """An error injected on purpose (``PREDICTOR_FAULT_ERROR_RATE``) for canary-analysis tests."""


def invalid(message: str) -> InvalidInput:
    return InvalidInput(message)
