"""What the transformer's (async) and the explainer's (blocking) predictor clients share: the
predictor they call, the V2 request they send, and the translation of every predictor failure
into the errors of ``predictor_errors.py`` (a predictor 400 stays a 400 with its message,
unreachable or not ready is a 503, no answer within the timeout a 504, anything else a 502).

Imports KServe, gRPC and httpx, so only the KServe-based components import it (``serving_common``'s
``__init__`` does not: the drift detector's virtualenv has none of them).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import grpc
import httpx
import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from serving_common.predictor_errors import PredictorFailed, PredictorTimeout, PredictorUnavailable

__all__ = ["PROTOCOLS", "PredictorClientBase", "Target", "target"]

PROTOCOLS = ("grpc-v2", "v2", "v1")
"""How a component may call the predictor (``--predictor_protocol``)."""


class Target(TypedDict):
    """The keyword arguments of :class:`PredictorClientBase`, for subclasses to pass on."""

    host: str
    protocol: str
    model_name: str
    input_name: str
    timeout: float
    use_ssl: NotRequired[bool]


def target(model_name: str, host: str, protocol: str, timeout: float, use_ssl: bool) -> Target:
    """The predictor serving ``model_name`` (its input name is read from the bundle on load)."""
    return Target(
        host=host,
        protocol=protocol,
        model_name=model_name,
        input_name="input",
        timeout=timeout,
        use_ssl=use_ssl,
    )


class PredictorClientBase:
    """The predictor of one model, called with one FP32 matrix per request."""

    def __init__(
        self,
        *,
        host: str,
        protocol: str,
        model_name: str,
        input_name: str,
        timeout: float,
        use_ssl: bool = False,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown predictor protocol {protocol!r}")
        self.host = host
        self.protocol = protocol
        self.model_name = model_name
        self.input_name = input_name
        self.timeout = timeout
        self.use_ssl = use_ssl
        scheme = "https" if use_ssl else "http"
        self.base_url = host if host.startswith(("http://", "https://")) else f"{scheme}://{host}"

    def describe(self) -> str:
        return f"{self.protocol} predictor at {self.host}"

    def _request(self, matrix: np.ndarray, request_id: str | None) -> InferRequest:
        inp = InferInput(name=self.input_name, shape=list(matrix.shape), datatype="FP32", data=matrix)
        return InferRequest(model_name=self.model_name, infer_inputs=[inp], request_id=request_id)

    # --- errors ---------------------------------------------------------------------------

    def _timeout_error(self) -> PredictorTimeout:
        return PredictorTimeout(f"the {self.describe()} did not answer within {self.timeout:g} s")

    def _from_grpc(self, e: grpc.RpcError) -> Exception:
        code = e.code() if hasattr(e, "code") else None
        details = (e.details() if hasattr(e, "details") else None) or str(e)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            rejected: Exception = InvalidInput(f"the predictor rejected the request: {details}")
            return rejected
        if code == grpc.StatusCode.UNAVAILABLE:
            return PredictorUnavailable(f"the {self.describe()} is unavailable: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self._timeout_error()
        name = code.name if code is not None else "UNKNOWN"
        return PredictorFailed(f"the {self.describe()} failed with {name}: {details}")

    def _from_http(self, response: httpx.Response) -> Exception:
        try:
            body = response.json()
            message = str(body.get("error", body)) if isinstance(body, dict) else str(body)
        except ValueError:
            message = response.text[:500] or response.reason_phrase
        status = response.status_code
        if status == 400:
            rejected: Exception = InvalidInput(f"the predictor rejected the request: {message}")
            return rejected
        if status == 503:
            return PredictorUnavailable(f"the {self.describe()} is unavailable: {message}")
        if status == 504:
            return self._timeout_error()
        return PredictorFailed(f"the {self.describe()} failed with HTTP {status}: {message}")
