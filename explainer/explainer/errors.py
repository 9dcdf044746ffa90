"""Errors of the explainer and the one place they map to HTTP statuses.

Client mistakes use KServe's own type; failures of the predictor hop carry their status on the
type (the same tree as the transformer's, so a caller sees the same codes from both)::

    kserve.errors.InvalidInput       400   bad records, bad request, the predictor's 400
    ExplainerError                   502   any other predictor failure (its message kept)
      PredictorUnavailable           503   predictor unreachable or not ready
      PredictorTimeout               504   no answer within EXPLAINER_PREDICTOR_TIMEOUT
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady

__all__ = ["ExplainerError", "PredictorTimeout", "PredictorUnavailable", "http_status"]


class ExplainerError(RuntimeError):
    """A failure of the predictor hop; the HTTP status is on the type."""

    http_status: ClassVar[int] = HTTPStatus.BAD_GATEWAY


class PredictorUnavailable(ExplainerError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE


class PredictorTimeout(ExplainerError):
    http_status = HTTPStatus.GATEWAY_TIMEOUT


def http_status(exc: BaseException) -> int:
    """The HTTP status a client sees for ``exc``."""
    if isinstance(exc, ExplainerError):
        return exc.http_status
    if isinstance(exc, InvalidInput):
        return HTTPStatus.BAD_REQUEST
    if isinstance(exc, ModelNotFound):
        return HTTPStatus.NOT_FOUND
    if isinstance(exc, (ModelNotReady, ServerNotReady)):
        return HTTPStatus.SERVICE_UNAVAILABLE
    return HTTPStatus.INTERNAL_SERVER_ERROR
