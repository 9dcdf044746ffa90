"""The explainer's gateway to the predictor: blocking calls (made from the SHAP worker thread),
V2 over gRPC (default), V2 or V1 over REST, on one channel / one pooled HTTP client.

Every failure is translated here into the errors of ``serving_common.predictor_errors``: a predictor 400
stays a 400 with its message, unreachable is 503, no answer within the timeout is 504.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Unpack

import grpc
import httpx
import numpy as np
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from kserve.protocol.infer_type import InferResponse
from serving_common.predictor_client import PredictorClientBase, Target
from serving_common.predictor_errors import PredictorFailed, PredictorUnavailable

__all__ = ["PredictorClient", "Scores"]


@dataclass(frozen=True)
class Scores:
    labels: np.ndarray
    """int64 ``[n]``"""
    probabilities: np.ndarray
    """float32 ``[n, n_classes]``"""


class PredictorClient(PredictorClientBase):
    def __init__(self, *, max_rows: int, **target: Unpack[Target]) -> None:
        super().__init__(**target)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None
        self._http: httpx.Client | None = None

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
            raise PredictorFailed(
                f"the {self.describe()} answered {scores.probabilities.shape[0]} rows for {matrix.shape[0]}"
            )
        return scores

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
            raise self._from_grpc(e) from e
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
            raise self._timeout_error() from e
        except httpx.TransportError as e:
            raise PredictorUnavailable(f"the {self.describe()} cannot be reached: {e!r}") from e
        if response.status_code != 200:
            raise self._from_http(response)
        try:
            doc = response.json()
            if self.protocol == "v2":
                return self._scores(InferResponse.from_rest(doc))
            predictions = doc["predictions"]
            probabilities = np.asarray([p["probabilities"] for p in predictions], dtype=np.float32)
            labels = np.asarray([p["label"] for p in predictions], dtype=np.int64)
            return Scores(labels=labels, probabilities=probabilities)
        except (KeyError, TypeError, ValueError) as e:
            raise PredictorFailed(f"the {self.describe()} sent an unreadable answer: {e!r}") from e

    # --- answers --------------------------------------------------------------------------

    def _scores(self, response: InferResponse) -> Scores:
        probs = response.get_output_by_name("probabilities")
        if probs is None:
            names = [o.name for o in response.outputs]
            raise PredictorFailed(f"the {self.describe()} answered without 'probabilities': {names}")
        probabilities = np.asarray(probs.as_numpy(), dtype=np.float32).reshape(-1, probs.shape[-1])
        label = response.get_output_by_name("label")
        labels = (
            np.asarray(label.as_numpy(), dtype=np.int64).reshape(-1)
            if label is not None
            else probabilities.argmax(axis=1)
        )
        return Scores(labels=labels, probabilities=probabilities)
