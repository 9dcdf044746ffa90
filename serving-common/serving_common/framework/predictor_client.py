"""The one client of the predictor hop (transformer and explainer): one FP32 matrix in, the
predictor's :class:`~serving_common.framework.scores.Scores` out, over V2 gRPC (default), V2
REST or V1 REST.

One long-lived connection per target, made on first use inside the server's event loop: a
``grpc.aio`` channel with KServe's protobuf stub (the matrix goes as one raw FP32 buffer, the
answer is read with ``np.frombuffer``), or one keep-alive HTTP/1.1 pool (``http_pool.py``; bodies
written and read with orjson straight from and into numpy). No KServe ``InferRequest``/``InferResponse``,
no pydantic, no log line on the request path.

Every call is bounded by the timeout as a whole, and every failure is translated here into the
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

__all__ = ["PROTOCOLS", "PredictorClient", "PredictorProtocol", "Scores"]

PredictorProtocol = Literal["grpc-v2", "v2", "v1"]
"""How a component calls the predictor (``--predictor_protocol``)."""
PROTOCOLS: tuple[str, ...] = get_args(PredictorProtocol)

POOL_SIZE = 64
"""Most idle HTTP connections to the predictor kept for reuse."""
KEEPALIVE_SECONDS = 4.0
"""An idle pooled connection is closed after this long: below the servers' idle timeouts (uvicorn's
own default is 5 s, KServe's ``--timeout_keep_alive`` 65 s), so the pool never reuses a connection
the predictor is about to close."""


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

    async def infer(self, matrix: np.ndarray, headers: Mapping[str, str], request_id: str | None) -> Scores:
        """Scores for the rows of ``matrix`` (float32 ``[n, n_features]``); ``headers`` are sent
        as they are (see ``serving_common.headers.forwarded``)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        step = self.max_rows or matrix.shape[0]
        if matrix.shape[0] <= step:
            return await self._one(matrix, headers, request_id)
        parts = [
            await self._one(matrix[i : i + step], headers, request_id)
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
    ) -> Scores:
        """:meth:`infer` from a worker thread, run on ``loop`` (the server's), blocking until done;
        bounded even if the loop stops (then a :class:`PredictorTimeout`)."""
        future = asyncio.run_coroutine_threadsafe(self.infer(matrix, headers, request_id), loop)
        requests = -(-matrix.shape[0] // (self.max_rows or max(1, matrix.shape[0])))
        try:
            return future.result(timeout=self.timeout * requests + 1.0)
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

    async def _one(self, matrix: np.ndarray, headers: Mapping[str, str], request_id: str | None) -> Scores:
        if self.caller is not None:
            headers = {**headers, CALLER_HEADER: self.caller}
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                if self.protocol == "grpc-v2":
                    answer = await self._grpc(matrix, headers, request_id or "")
                else:
                    answer = await self._rest(matrix, headers, request_id)
        except TimeoutError as e:
            raise self._timeout() from e
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

    async def _grpc(self, matrix: np.ndarray, headers: Mapping[str, str], request_id: str) -> Scores:
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
                request, timeout=self.timeout, metadata=tuple(headers.items())
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

    def _timeout(self) -> PredictorTimeout:
        return PredictorTimeout(f"{self._what} did not answer within {self.timeout:g} s")
