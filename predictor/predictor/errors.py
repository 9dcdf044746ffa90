"""Errors of the predictor and the one place they map to protocol codes.

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

from http import HTTPStatus

from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady

__all__ = ["InjectedFault", "PredictorError", "http_status", "invalid"]


class PredictorError(RuntimeError):
    """A failure on the server's side."""


class InjectedFault(PredictorError):
    """An error injected on purpose (``PREDICTOR_FAULT_ERROR_RATE``) for canary-analysis tests."""


def invalid(message: str) -> InvalidInput:
    return InvalidInput(message)


def http_status(exc: BaseException) -> int:
    """The HTTP status for an exception raised while serving a request."""
    if isinstance(exc, InvalidInput):
        return HTTPStatus.BAD_REQUEST
    if isinstance(exc, ModelNotFound):
        return HTTPStatus.NOT_FOUND
    if isinstance(exc, (ModelNotReady, ServerNotReady)):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if isinstance(exc, NotImplementedError):
        return HTTPStatus.NOT_IMPLEMENTED
    return HTTPStatus.INTERNAL_SERVER_ERROR


GRPC_CODES = {
    HTTPStatus.BAD_REQUEST: "INVALID_ARGUMENT",
    HTTPStatus.NOT_FOUND: "NOT_FOUND",
    HTTPStatus.SERVICE_UNAVAILABLE: "UNAVAILABLE",
    HTTPStatus.NOT_IMPLEMENTED: "UNIMPLEMENTED",
    HTTPStatus.INTERNAL_SERVER_ERROR: "INTERNAL",
}


def grpc_code(exc: BaseException) -> str:
    """The gRPC status name KServe's interceptor gives ``exc``."""
    return GRPC_CODES.get(HTTPStatus(http_status(exc)), "INTERNAL")
