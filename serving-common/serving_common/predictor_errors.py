"""Errors of the predictor hop (transformer and explainer) and the one place they map to codes.

Client mistakes use KServe's own type, so KServe's REST handler and gRPC interceptor give them
the standard codes; failures of the predictor hop carry their status on the type and are
``GrpcException`` subclasses, so KServe's gRPC interceptor aborts with their code, and
:func:`error_handler` (the one REST handler) answers with their HTTP status::

    kserve.errors.InvalidInput       400 / INVALID_ARGUMENT    bad records, bad request, the predictor's 400
    PredictorError                   (GrpcException)
      PredictorUnavailable           503 / UNAVAILABLE         predictor unreachable or not ready
      PredictorTimeout               504 / DEADLINE_EXCEEDED   no answer within *_PREDICTOR_TIMEOUT
      PredictorFailed                502 / INTERNAL            any other predictor failure (its message kept)

Imports KServe and gRPC, so only the KServe-based components import it (``serving_common``'s
``__init__`` does not: the drift detector's virtualenv has neither).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from fastapi import Request
from fastapi.responses import JSONResponse
from grpc import StatusCode
from grpc_interceptor.exceptions import GrpcException
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady

__all__ = [
    "PredictorError",
    "PredictorFailed",
    "PredictorTimeout",
    "PredictorUnavailable",
    "error_handler",
    "grpc_code",
    "http_status",
]


class PredictorError(GrpcException):
    """A failure of the predictor hop; ``http_status`` and ``status_code`` (gRPC) on the type."""

    http_status: ClassVar[int] = HTTPStatus.BAD_GATEWAY
    status_code = StatusCode.INTERNAL

    def __init__(self, details: str) -> None:
        super().__init__(details)

    def __str__(self) -> str:
        return self.details


class PredictorUnavailable(PredictorError):
    """The predictor cannot be reached, or says it is not ready."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    status_code = StatusCode.UNAVAILABLE


class PredictorTimeout(PredictorError):
    """The predictor did not answer within the timeout."""

    http_status = HTTPStatus.GATEWAY_TIMEOUT
    status_code = StatusCode.DEADLINE_EXCEEDED


class PredictorFailed(PredictorError):
    """The predictor answered with an error other than a client error or unavailability."""


async def error_handler(_: Request, exc: Exception) -> JSONResponse:
    """The REST handler for :class:`PredictorError` (KServe's handlers do the rest)."""
    assert isinstance(exc, PredictorError)
    return JSONResponse(status_code=exc.http_status, content={"error": exc.details})


def http_status(exc: BaseException) -> int:
    """The HTTP status a REST client sees for ``exc``."""
    if isinstance(exc, PredictorError):
        return exc.http_status
    if isinstance(exc, InvalidInput):
        return HTTPStatus.BAD_REQUEST
    if isinstance(exc, ModelNotFound):
        return HTTPStatus.NOT_FOUND
    if isinstance(exc, (ModelNotReady, ServerNotReady)):
        return HTTPStatus.SERVICE_UNAVAILABLE
    return HTTPStatus.INTERNAL_SERVER_ERROR


def grpc_code(exc: BaseException) -> str:
    """The gRPC status name a gRPC client sees for ``exc`` (as KServe's interceptor maps it)."""
    if isinstance(exc, GrpcException):
        return str(exc.status_code.name)
    if isinstance(exc, InvalidInput):
        return "INVALID_ARGUMENT"
    if isinstance(exc, ModelNotFound):
        return "NOT_FOUND"
    if isinstance(exc, (ModelNotReady, ServerNotReady)):
        return "UNAVAILABLE"
    return "INTERNAL"
