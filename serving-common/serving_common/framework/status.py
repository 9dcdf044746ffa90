"""The one status table of the KServe-based components, and the errors of the predictor hop.

Every exception raised while serving a request maps here, and only here, to the HTTP status a
REST client sees and the gRPC status name a gRPC client sees. Client mistakes use KServe's own
types, so KServe's REST handlers and gRPC interceptor give them the same codes; failures of the
predictor hop (transformer and explainer calling the predictor) carry their status on the type
and are ``GrpcException`` subclasses, so KServe's gRPC interceptor aborts with their code::

    kserve.errors.InvalidInput           400 / INVALID_ARGUMENT    bad records or request, the predictor's 400
    kserve.errors.ModelNotFound          404 / NOT_FOUND           unknown model name
    kserve.errors.ModelNotReady          503 / UNAVAILABLE         not loaded (also ServerNotReady)
    NotImplementedError                  501 / UNIMPLEMENTED       e.g. model versions (predictor)
    PredictorCallError                   (GrpcException)           the predictor hop failed
      PredictorUnavailable               503 / UNAVAILABLE         predictor unreachable or not ready
      PredictorTimeout                   504 / DEADLINE_EXCEEDED   no answer within *_PREDICTOR_TIMEOUT
      PredictorFailed                    502 / INTERNAL            any other predictor failure (message kept)
    anything else                        500 / INTERNAL            our own failure
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from grpc import StatusCode
from grpc_interceptor.exceptions import GrpcException
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady

__all__ = [
    "PredictorCallError",
    "PredictorFailed",
    "PredictorTimeout",
    "PredictorUnavailable",
    "grpc_code",
    "http_status",
    "public_message",
]


class PredictorCallError(GrpcException):
    """A failure of the predictor hop; ``http_status`` and ``status_code`` (gRPC) on the type."""

    http_status: ClassVar[int] = HTTPStatus.BAD_GATEWAY
    status_code = StatusCode.INTERNAL

    def __init__(self, details: str) -> None:
        super().__init__(details)

    def __str__(self) -> str:
        return str(self.details)


class PredictorUnavailable(PredictorCallError):
    """The predictor cannot be reached, or says it is not ready."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    status_code = StatusCode.UNAVAILABLE


class PredictorTimeout(PredictorCallError):
    """The predictor did not answer within the timeout."""

    http_status = HTTPStatus.GATEWAY_TIMEOUT
    status_code = StatusCode.DEADLINE_EXCEEDED


class PredictorFailed(PredictorCallError):
    """The predictor answered with an error other than a client error or unavailability."""


_TABLE: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int, str], ...] = (
    (InvalidInput, HTTPStatus.BAD_REQUEST, "INVALID_ARGUMENT"),
    (ModelNotFound, HTTPStatus.NOT_FOUND, "NOT_FOUND"),
    ((ModelNotReady, ServerNotReady), HTTPStatus.SERVICE_UNAVAILABLE, "UNAVAILABLE"),
    (NotImplementedError, HTTPStatus.NOT_IMPLEMENTED, "UNIMPLEMENTED"),
)


def http_status(exc: BaseException) -> int:
    """The HTTP status a REST client sees for ``exc``."""
    if isinstance(exc, PredictorCallError):
        return exc.http_status
    for kind, status, _ in _TABLE:
        if isinstance(exc, kind):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def grpc_code(exc: BaseException) -> str:
    """The gRPC status name a gRPC client sees for ``exc`` (as KServe's interceptor maps it)."""
    if isinstance(exc, GrpcException):
        return str(exc.status_code.name)
    for kind, _, code in _TABLE:
        if isinstance(exc, kind):
            return code
    return "INTERNAL"


_PUBLIC = {
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal error",
    HTTPStatus.BAD_GATEWAY: "the predictor failed",
    HTTPStatus.SERVICE_UNAVAILABLE: "the predictor is unavailable",
    HTTPStatus.GATEWAY_TIMEOUT: "the predictor did not answer in time",
}


def public_message(exc: BaseException, status: int, error_id: str) -> str:
    """What a REST client reads for ``exc``: the message of a client mistake, of "not ready" and of
    a failed predictor hop (which names no host); for any other 5xx (our own failure) a fixed
    sentence and ``error_id`` (the log line has the details: no object addresses in answers)."""
    if status < 500 or isinstance(exc, (ModelNotReady, ServerNotReady, PredictorCallError)):
        return str(exc) or type(exc).__name__
    return f"{_PUBLIC.get(HTTPStatus(status), 'internal error')} (error id {error_id})"
