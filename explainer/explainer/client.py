"""The explainer's gateway to the predictor: blocking calls (made from the SHAP worker thread),
V2 over gRPC (default), V2 or V1 over REST, on one channel / one pooled HTTP client.

Every failure is translated here into the explainer's errors (``errors.py``): a predictor 400
stays a 400 with its message, unreachable is 503, no answer within the timeout is 504.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse

from explainer.errors import ExplainerError, PredictorTimeout, PredictorUnavailable

__all__ = ["PredictorClient", "Scores"]


@dataclass(frozen=True)
class Scores:
    labels: np.ndarray
    """int64 ``[n]``"""
    probabilities: np.ndarray
    """float32 ``[n, n_classes]``"""


class PredictorClient:
    def __init__(
        self,
        *,
        host: str,
        protocol: str,
        model_name: str,
        input_name: str,
        timeout: float,
        max_rows: int,
        use_ssl: bool = False,
    ) -> None:
        if protocol not in ("grpc-v2", "v2", "v1"):
            raise ValueError(f"unknown predictor protocol {protocol!r}")
        self.host = host
        self.protocol = protocol
        self.model_name = model_name
        self.input_name = input_name
        self.timeout = timeout
        self.max_rows = max_rows
        self.use_ssl = use_ssl
        scheme = "https" if use_ssl else "http"
        self.base_url = host if host.startswith(("http://", "https://")) else f"{scheme}://{host}"
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None
        self._http: httpx.Client | None = None

    def describe(self) -> str:
        return f"{self.protocol} predictor at {self.host}"

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._http is not None:
            self._http.close()

    def predict(self, matrix: np.ndarray, headers: Mapping[str, str]) -> Scores:
        """Scores for every row, in requests of at most ``max_rows`` rows."""
        parts = [
            self._predict(matrix[start : start + self.max_rows], headers)
            for start in range(0, matrix.shape[0], self.max_rows)
        ]
        if len(parts) == 1:
            return parts[0]
        return Scores(
            labels=np.concatenate([p.labels for p in parts]),
            probabilities=np.concatenate([p.probabilities for p in parts]),
        )

    # --- one request ----------------------------------------------------------------------

    def _predict(self, matrix: np.ndarray, headers: Mapping[str, str]) -> Scores:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        scores = self._grpc(matrix, headers) if self.protocol == "grpc-v2" else self._rest(matrix, headers)
        if scores.probabilities.shape[0] != matrix.shape[0]:
            raise ExplainerError(
                f"the {self.describe()} answered {scores.probabilities.shape[0]} rows for {matrix.shape[0]}"
            )
        return scores

    def _request(self, matrix: np.ndarray, request_id: str | None) -> InferRequest:
        inp = InferInput(name=self.input_name, shape=list(matrix.shape), datatype="FP32", data=matrix)
        return InferRequest(model_name=self.model_name, infer_inputs=[inp], request_id=request_id)

    def _grpc(self, matrix: np.ndarray, headers: Mapping[str, str]) -> Scores:
        with self._lock:
            if self._stub is None:
                options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
                self._channel = (
                    grpc.secure_channel(self.host, grpc.ssl_channel_credentials(), options=options)
                    if self.use_ssl
                    else grpc.insecure_channel(self.host, options=options)
                )
                self._stub = GRPCInferenceServiceStub(self._channel)
        request = self._request(matrix, headers.get("x-request-id")).to_grpc()
        try:
            response = self._stub.ModelInfer(request, timeout=self.timeout, metadata=tuple(headers.items()))
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                rejected: Exception = InvalidInput(f"the predictor rejected the request: {details}")
                raise rejected from e
            if code == grpc.StatusCode.UNAVAILABLE:
                raise PredictorUnavailable(f"the {self.describe()} is unavailable: {details}") from e
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self._timeout() from e
            raise ExplainerError(f"the {self.describe()} failed with {code.name}: {details}") from e
        return self._scores(InferResponse.from_grpc(response))

    def _rest(self, matrix: np.ndarray, headers: Mapping[str, str]) -> Scores:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self.timeout)
        if self.protocol == "v2":
            url = f"{self.base_url}/v2/models/{self.model_name}/infer"
            body, _ = self._request(matrix, headers.get("x-request-id")).to_rest()
        else:
            url = f"{self.base_url}/v1/models/{self.model_name}:predict"
            body = {"instances": matrix.tolist()}
        try:
            response = self._http.post(url, json=body, headers=dict(headers))
        except httpx.TimeoutException as e:
            raise self._timeout() from e
        except httpx.TransportError as e:
            raise PredictorUnavailable(f"the {self.describe()} cannot be reached: {e!r}") from e
        if response.status_code != 200:
            raise self._http_error(response)
        try:
            doc = response.json()
            if self.protocol == "v2":
                return self._scores(InferResponse.from_rest(doc))
            predictions = doc["predictions"]
            probabilities = np.asarray([p["probabilities"] for p in predictions], dtype=np.float32)
            labels = np.asarray([p["label"] for p in predictions], dtype=np.int64)
            return Scores(labels=labels, probabilities=probabilities)
        except (KeyError, TypeError, ValueError) as e:
            raise ExplainerError(f"the {self.describe()} sent an unreadable answer: {e!r}") from e

    # --- answers and errors ---------------------------------------------------------------

    def _scores(self, response: InferResponse) -> Scores:
        probs = response.get_output_by_name("probabilities")
        if probs is None:
            names = [o.name for o in response.outputs]
            raise ExplainerError(f"the {self.describe()} answered without 'probabilities': {names}")
        probabilities = np.asarray(probs.as_numpy(), dtype=np.float32).reshape(-1, probs.shape[-1])
        label = response.get_output_by_name("label")
        labels = (
            np.asarray(label.as_numpy(), dtype=np.int64).reshape(-1)
            if label is not None
            else probabilities.argmax(axis=1)
        )
        return Scores(labels=labels, probabilities=probabilities)

    def _timeout(self) -> PredictorTimeout:
        return PredictorTimeout(f"the {self.describe()} did not answer within {self.timeout:g} s")

    def _http_error(self, response: httpx.Response) -> Exception:
        try:
            doc: Any = response.json()
            message = str(doc.get("error", doc)) if isinstance(doc, dict) else str(doc)
        except ValueError:
            message = response.text[:500]
        if response.status_code == 400:
            rejected: Exception = InvalidInput(f"the predictor rejected the request: {message}")
            return rejected
        if response.status_code == 503:
            return PredictorUnavailable(f"the {self.describe()} is unavailable: {message}")
        if response.status_code == 504:
            return self._timeout()
        return ExplainerError(f"the {self.describe()} failed with HTTP {response.status_code}: {message}")
