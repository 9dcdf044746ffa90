"""The one client of the predictor hop (transformer and explainer): one FP32 matrix in, the
predictor's :class:`~serving_common.framework.scores.Scores` out, over V2 gRPC (default), V2
REST or V1 REST.

One long-lived connection per target, made on first use inside the server's event loop: a
``grpc.aio`` channel with KServe's protobuf stub (the matrix goes as one raw FP32 buffer, the
answer is read with ``np.frombuffer``), or one keep-alive HTTP/1.1 pool (``http_pool.py``; bodies
written and read with orjson straight from and into numpy). No KServe ``InferRequest``/``InferResponse``,
no pydantic, no log line on the request path.

Every call is bounded by the timeout as a whole, or by the caller's deadline when that is sooner
(see :func:`request_deadline`: the time left minus :data:`DEADLINE_MARGIN_SECONDS`; over gRPC it is the
call's deadline, over REST it is also sent as ``x-envoy-expected-rq-timeout-ms``). A deadline
already passed is a :class:`DeadlineExpired` (504 / DEADLINE_EXCEEDED) without calling the
predictor. Every call is also and every failure is translated here into the
errors of ``status.py``: a predictor 400 stays a 400 with the predictor's message, unreachable or
not ready is a 503, no answer within the timeout a 504, anything else a 502. Callers that run in
a worker thread (the explainer's SHAP thread) use :meth:`PredictorClient.infer_from_thread`,
which runs the call on the server's event loop: one transport for both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import grpc
import numpy as np
import orjson
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from serving_common.framework import scores
from serving_common.framework.http_pool import HttpPool, HttpProtocolError
from serving_common.framework.scores import Scores
from serving_common.framework.status import PredictorFailed, PredictorTimeout, PredictorUnavailable
from serving_common.headers import CALLER_HEADER

__all__ = [
    "DEADLINE_MARGIN_SECONDS",
    "ENVOY_TIMEOUT_HEADER",
    "PROTOCOLS",
    "DeadlineExpired",
    "PredictorClient",
    "PredictorProtocol",
    "Scores",
    "request_deadline",
]

PredictorProtocol = Literal["grpc-v2", "v2", "v1"]
"""How a component calls the predictor (``--predictor_protocol``)."""
PROTOCOLS: tuple[str, ...] = get_args(PredictorProtocol)

POOL_SIZE = 64
"""Most idle HTTP connections to the predictor kept for reuse."""
KEEPALIVE_SECONDS = 4.0
"""An idle pooled connection is closed after this long: below the servers' idle timeouts (uvicorn's
own default is 5 s, KServe's ``--timeout_keep_alive`` 65 s), so the pool never reuses a connection
the predictor is about to close."""
DEADLINE_MARGIN_SECONDS = 0.02
"""Kept back from the caller's remaining time for our own answer: the predictor hop gets the time
left minus this."""

ENVOY_TIMEOUT_HEADER = "x-envoy-expected-rq-timeout-ms"
"""Envoy's (Istio's sidecar's) remaining time of a routed request with a timeout, in ms."""
GRPC_TIMEOUT_HEADER = "grpc-timeout"
MAX_DEADLINE_SECONDS = 86_400.0
"""A header value saying more time than this is ignored (as invalid)."""
_GRPC_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def _seconds(name: str, value: str) -> float | None:
    """The seconds ``value`` of header ``name`` says, or ``None`` when it is not valid: not
    ASCII digits (``grpc-timeout``: at most 8 digits and a unit H/M/S/m/u/n), or more than
    :data:`MAX_DEADLINE_SECONDS`. Negative values are not digits, so they are ignored too."""
    value = value.strip()
    if name == GRPC_TIMEOUT_HEADER:
        digits, unit = value[:-1], value[-1:]
        if (
            unit not in _GRPC_UNITS
            or not (0 < len(digits) <= 8)
            or not digits.isascii()
            or not digits.isdigit()
        ):
            return None
        seconds = int(digits) * _GRPC_UNITS[unit]
    else:
        if not (0 < len(value) <= 12) or not value.isascii() or not value.isdigit():
            return None
        seconds = int(value) / 1000.0
    return seconds if seconds <= MAX_DEADLINE_SECONDS else None


def request_deadline(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The incoming request's deadline in ``time.monotonic()`` seconds, from
    ``x-envoy-expected-rq-timeout-ms`` or ``grpc-timeout`` (the sooner when both are valid);
    ``None`` when neither is present and valid. Invalid values are ignored, never an error.
    A value of 0 is a deadline that has already passed."""
    if not headers:
        return None
    left: float | None = None
    for name, value in headers.items():
        key = name.lower()
        if key in (ENVOY_TIMEOUT_HEADER, GRPC_TIMEOUT_HEADER) and isinstance(value, str):
            seconds = _seconds(key, value)
            if seconds is not None:
                left = seconds if left is None else min(left, seconds)
    if left is None:
        return None
    return (time.monotonic() if now is None else now) + left


class DeadlineExpired(PredictorTimeout):
    """The caller's deadline passed before the predictor was called (504 / DEADLINE_EXCEEDED)."""


class PredictorClient:
    """The predictor of one model, called with one FP32 matrix per request."""

    def __init__(
        self,
        *,
        host: str,
        protocol: str,
        model_name: str,
        timeout: float,
        input_name: str = "input",
        use_ssl: bool = False,
        retries: int = 0,
        caller: str | None = None,
        max_rows: int | None = None,
        observe: Callable[[float], None] | None = None,
        on_expired: Callable[[], None] | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown predictor protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
        self.host = host
        self.protocol = protocol
        self.model_name = model_name
        self.input_name = input_name
        self.timeout = timeout
        self.use_ssl = use_ssl
        self.retries = retries
        self.caller = caller
        """Sent as ``x-model-serving-caller`` on every call (contract C1), when set."""
        self.max_rows = max_rows
        """Rows per predictor request: larger matrices go in several requests."""
        self.observe = observe
        """Called with the seconds of each predictor request (a histogram's ``observe``)."""
        self.on_expired = on_expired
        """Called once for each call refused because the caller's deadline had passed."""
        scheme = "https" if use_ssl else "http"
        base = host if host.startswith(("http://", "https://")) else f"{scheme}://{host}"
        self.base_url = base
        self.path = (
            f"/v2/models/{model_name}/infer" if protocol == "v2" else f"/v1/models/{model_name}:predict"
        )
        self._what = f"the {protocol} predictor"  # in answers to clients: never the internal host:port
        self._channel: grpc.aio.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None
        self._http: HttpPool | None = None

    def describe(self) -> str:
        return f"{self.protocol} predictor at {self.host}"

    # --- calls ----------------------------------------------------------------------------

    async def infer(
        self,
        matrix: np.ndarray,
        headers: Mapping[str, str],
        request_id: str | None,
        deadline: float | None = None,
    ) -> Scores:
        """Scores for the rows of ``matrix`` (float32 ``[n, n_features]``); ``headers`` are sent
        as they are (see ``serving_common.headers.forwarded``). ``deadline`` is the caller's, in
        ``time.monotonic()`` seconds (``None``: only the configured timeout bounds the call)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        step = self.max_rows or matrix.shape[0]
        if matrix.shape[0] <= step:
            return await self._one(matrix, headers, request_id, deadline)
        parts = [
            await self._one(matrix[i : i + step], headers, request_id, deadline)
            for i in range(0, matrix.shape[0], step)
        ]
        return Scores(
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.probabilities for p in parts]),
            parts[0].model_version,
        )

    def infer_from_thread(
        self,
        loop: asyncio.AbstractEventLoop,
        matrix: np.ndarray,
        headers: Mapping[str, str],
        request_id: str | None,
        deadline: float | None = None,
    ) -> Scores:
        """:meth:`infer` from a worker thread, run on ``loop`` (the server's), blocking until done;
        bounded even if the loop stops (then a :class:`PredictorTimeout`)."""
        future = asyncio.run_coroutine_threadsafe(self.infer(matrix, headers, request_id, deadline), loop)
        requests = -(-matrix.shape[0] // (self.max_rows or max(1, matrix.shape[0])))
        bound = self.timeout * requests + 1.0
        if deadline is not None:
            bound = min(bound, max(0.0, deadline - time.monotonic()) + 1.0)
        try:
            return future.result(timeout=bound)
        except concurrent.futures.TimeoutError as e:
            future.cancel()
            raise self._timeout() from e

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def budget(self, deadline: float | None) -> float | None:
        """Seconds the next predictor request may take: the configured timeout, or the time left
        before ``deadline`` less the margin when that is sooner; ``None`` when none is left."""
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic() - DEADLINE_MARGIN_SECONDS
        return None if left <= 0 else min(self.timeout, left)

    async def _one(
        self,
        matrix: np.ndarray,
        headers: Mapping[str, str],
        request_id: str | None,
        deadline: float | None,
    ) -> Scores:
        budget = self.budget(deadline)
        if budget is None:
            if self.on_expired is not None:
                self.on_expired()
            raise DeadlineExpired(
                "the request's deadline passed before the predictor was called "
                "(x-envoy-expected-rq-timeout-ms / grpc-timeout)"
            )
        headers = {k: v for k, v in headers.items() if k.lower() != ENVOY_TIMEOUT_HEADER}
        if self.caller is not None:
            headers[CALLER_HEADER] = self.caller
        if deadline is not None and self.protocol != "grpc-v2":
            headers[ENVOY_TIMEOUT_HEADER] = str(max(1, int(budget * 1000)))
        start = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                if self.protocol == "grpc-v2":
                    answer = await self._grpc(matrix, headers, request_id or "", budget)
                else:
                    answer = await self._rest(matrix, headers, request_id)
        except TimeoutError as e:
            raise self._timeout(budget) from e
        finally:
            if self.observe is not None:
                self.observe(time.perf_counter() - start)
        if answer.labels.shape[0] != matrix.shape[0]:
            raise PredictorFailed(
                f"{self._what} answered {answer.labels.shape[0]} rows for {matrix.shape[0]}"
            )
        return answer

    # --- gRPC -----------------------------------------------------------------------------

    def _grpc_stub(self) -> GRPCInferenceServiceStub:
        if self._stub is None:
            options: list[tuple[str, Any]] = [
                ("grpc.max_send_message_length", -1),
                ("grpc.max_receive_message_length", -1),
            ]
            if self.retries:
                policy = {
                    "maxAttempts": self.retries + 1,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                }
                config = {
                    "methodConfig": [
                        {"name": [{"service": "inference.GRPCInferenceService"}], "retryPolicy": policy}
                    ]
                }
                options += [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]
            self._channel = (
                grpc.aio.secure_channel(self.host, grpc.ssl_channel_credentials(), options=options)
                if self.use_ssl
                else grpc.aio.insecure_channel(self.host, options=options)
            )
            self._stub = GRPCInferenceServiceStub(self._channel)
        return self._stub

    async def _grpc(
        self, matrix: np.ndarray, headers: Mapping[str, str], request_id: str, budget: float
    ) -> Scores:
        request = pb.ModelInferRequest(
            model_name=self.model_name,
            id=request_id,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name=self.input_name, datatype="FP32", shape=matrix.shape
                )
            ],
            raw_input_contents=[matrix.tobytes()],
        )
        try:
            response = await self._grpc_stub().ModelInfer(
                request, timeout=budget, metadata=tuple(headers.items())
            )
        except grpc.RpcError as e:
            raise self.from_grpc(e) from e
        return scores.from_grpc(response, self._what)

    def from_grpc(self, e: grpc.RpcError) -> Exception:
        """The error a gRPC failure of the predictor is for our caller."""
        code = e.code() if hasattr(e, "code") else None
        details = (e.details() if hasattr(e, "details") else None) or str(e)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            rejected: Exception = InvalidInput(f"the predictor rejected the request: {details}")
            return rejected
        if code == grpc.StatusCode.UNAVAILABLE:
            return PredictorUnavailable(f"{self._what} is unavailable: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self._timeout()
        name = code.name if code is not None else "UNKNOWN"
        return PredictorFailed(f"{self._what} failed with {name}: {details}")

    # --- REST -----------------------------------------------------------------------------

    def _pool(self) -> HttpPool:
        if self._http is None:
            self._http = HttpPool(self.base_url, size=POOL_SIZE, keepalive=KEEPALIVE_SECONDS)
        return self._http

    def _body(self, matrix: np.ndarray, request_id: str | None) -> bytes:
        if self.protocol == "v1":
            return orjson.dumps({"instances": matrix}, option=orjson.OPT_SERIALIZE_NUMPY)
        doc: dict[str, Any] = {
            "inputs": [
                {
                    "name": self.input_name,
                    "shape": matrix.shape,
                    "datatype": "FP32",
                    "data": matrix.reshape(-1),
                }
            ]
        }
        if request_id:
            doc["id"] = request_id
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)

    async def _rest(self, matrix: np.ndarray, headers: Mapping[str, str], request_id: str | None) -> Scores:
        sent = {**headers, "content-type": "application/json"}
        try:
            status, content = await self._pool().post(self.path, sent, self._body(matrix, request_id))
        except OSError as e:  # ConnectionError included: cannot connect, or the connection was lost
            raise PredictorUnavailable(f"{self._what} cannot be reached: {e!r}") from e
        except HttpProtocolError as e:
            raise PredictorFailed(f"{self._what} failed: {e}") from e
        if status != 200:
            raise self.from_http(status, content)
        try:
            doc = orjson.loads(content)
        except orjson.JSONDecodeError as e:
            raise PredictorFailed(f"{self._what} sent an unreadable answer: {e}") from e
        return scores.from_v2(doc, self._what) if self.protocol == "v2" else scores.from_v1(doc, self._what)

    def from_http(self, status: int, content: bytes) -> Exception:
        """The error an HTTP error answer of the predictor is for our caller."""
        try:
            doc = orjson.loads(content)
            message = str(doc.get("error", doc)) if isinstance(doc, dict) else str(doc)
        except orjson.JSONDecodeError:
            message = content[:500].decode("utf-8", errors="replace") or f"HTTP {status}"
        if status == 400:
            rejected: Exception = InvalidInput(f"the predictor rejected the request: {message}")
            return rejected
        if status == 503:
            return PredictorUnavailable(f"{self._what} is unavailable: {message}")
        if status == 504:
            return self._timeout()
        return PredictorFailed(f"{self._what} failed with HTTP {status}: {message}")

    def _timeout(self, budget: float | None = None) -> PredictorTimeout:
        if budget is not None and budget < self.timeout:
            return PredictorTimeout(
                f"{self._what} did not answer within the request's deadline ({budget:.3f} s left)"
            )
        return PredictorTimeout(f"{self._what} did not answer within {self.timeout:g} s")
