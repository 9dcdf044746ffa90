"""The one gateway to the predictor: V2 over gRPC (default), V2 or V1 over REST.

One client (one gRPC channel, or one pooled HTTP client) per process, made on first use inside
the server's event loop and reused. Every call is bounded by the timeout as a whole, and every
failure is translated at this boundary into the errors of ``serving_common.predictor_errors``, so a
predictor 400 stays a 400 with the predictor's message, and an unreachable or slow predictor
is a 503 or a 504 instead of a hang or a bare 500.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Unpack

import grpc
import httpx
import numpy as np
import orjson
from kserve.inference_client import InferenceGRPCClient, InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferResponse
from serving_common.predictor_client import PredictorClientBase, Target
from serving_common.predictor_errors import PredictorFailed, PredictorUnavailable

from transformer import metrics

__all__ = ["OUTPUT_LABEL", "OUTPUT_PROBABILITIES", "PredictorClient", "Scores"]

OUTPUT_LABEL = "label"
OUTPUT_PROBABILITIES = "probabilities"


@dataclass(frozen=True)
class Scores:
    """What the predictor said about a batch."""

    labels: np.ndarray
    """int64 ``[n]``: class index per row."""
    probabilities: np.ndarray
    """float32 ``[n, n_classes]``."""
    model_version: str | None


class PredictorClient(PredictorClientBase):
    """Calls the predictor for one model with one FP32 matrix per request."""

    def __init__(self, *, retries: int = 0, **target: Unpack[Target]) -> None:
        super().__init__(**target)
        self.retries = retries
        self._grpc: InferenceGRPCClient | None = None
        self._rest: InferenceRESTClient | None = None
        self._seconds = metrics.PREDICTOR_SECONDS.labels(self.model_name, self.protocol)

    async def infer(self, matrix: np.ndarray, headers: dict[str, str], request_id: str) -> Scores:
        """Scores for the rows of ``matrix`` (float32 ``[n, n_features]``)."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                if self.protocol == "grpc-v2":
                    scores = await self._infer_grpc(matrix, headers, request_id)
                elif self.protocol == "v2":
                    scores = await self._infer_rest_v2(matrix, headers, request_id)
                else:
                    scores = await self._infer_rest_v1(matrix, headers)
        except TimeoutError as e:
            raise self._timeout_error() from e
        finally:
            self._seconds.observe(time.perf_counter() - start)
        if scores.probabilities.shape[0] != matrix.shape[0] or scores.labels.shape[0] != matrix.shape[0]:
            raise PredictorFailed(
                f"the {self.describe()} answered {scores.probabilities.shape[0]} rows for {matrix.shape[0]}"
            )
        return scores

    async def close(self) -> None:
        if self._grpc is not None:
            await self._grpc.close()
            self._grpc = None
        if self._rest is not None:
            await self._rest.close()
            self._rest = None

    # --- gRPC -----------------------------------------------------------------------------

    async def _infer_grpc(self, matrix: np.ndarray, headers: dict[str, str], request_id: str) -> Scores:
        if self._grpc is None:
            self._grpc = InferenceGRPCClient(
                url=self.host, use_ssl=self.use_ssl, timeout=self.timeout, retries=self.retries
            )
        try:
            response = await self._grpc.infer(
                self._request(matrix, request_id), headers=tuple(headers.items())
            )
        except grpc.RpcError as e:
            raise self._from_grpc(e) from e
        return self._scores_v2(response)

    # --- REST -----------------------------------------------------------------------------

    def _rest_client(self) -> InferenceRESTClient:
        if self._rest is None:
            self._rest = InferenceRESTClient(
                RESTConfig(protocol=self.protocol, timeout=self.timeout, retries=self.retries)
            )
        return self._rest

    async def _post(self, call: Any) -> Any:
        try:
            return await call
        except httpx.HTTPStatusError as e:
            raise self._from_http(e.response) from e
        except httpx.TimeoutException as e:
            raise self._timeout_error() from e
        except httpx.TransportError as e:
            raise PredictorUnavailable(f"the {self.describe()} cannot be reached: {e!r}") from e
        except (ValueError, orjson.JSONDecodeError) as e:
            raise PredictorFailed(f"the {self.describe()} sent an unreadable answer: {e}") from e

    async def _infer_rest_v2(self, matrix: np.ndarray, headers: dict[str, str], request_id: str) -> Scores:
        client = self._rest_client()
        response = await self._post(
            client.infer(self.base_url, self._request(matrix, request_id), self.model_name, headers=headers)
        )
        return self._scores_v2(response)

    async def _infer_rest_v1(self, matrix: np.ndarray, headers: dict[str, str]) -> Scores:
        client = self._rest_client()
        body = await self._post(
            client.infer(self.base_url, {"instances": matrix.tolist()}, self.model_name, headers=headers)
        )
        predictions = body.get("predictions") if isinstance(body, dict) else None
        try:
            if predictions and isinstance(predictions[0], dict):
                probabilities = np.asarray([p[OUTPUT_PROBABILITIES] for p in predictions], dtype=np.float32)
                labels = np.asarray([p[OUTPUT_LABEL] for p in predictions], dtype=np.int64)
            else:
                probabilities = np.asarray(predictions, dtype=np.float32)
                labels = probabilities.argmax(axis=1)
            if probabilities.ndim != 2:
                raise ValueError(f"probabilities have shape {list(probabilities.shape)}")
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise PredictorFailed(
                f"the {self.describe()} answered without per-row '{OUTPUT_LABEL}' and "
                f"'{OUTPUT_PROBABILITIES}': {e!r}"
            ) from e
        return Scores(labels=labels, probabilities=probabilities, model_version=None)

    def _scores_v2(self, response: InferResponse) -> Scores:
        probs = response.get_output_by_name(OUTPUT_PROBABILITIES)
        if probs is None:
            names = [o.name for o in response.outputs]
            raise PredictorFailed(f"the {self.describe()} answered without '{OUTPUT_PROBABILITIES}': {names}")
        probabilities = probs.as_numpy().astype(np.float32, copy=False)
        if probabilities.ndim != 2:
            raise PredictorFailed(
                f"'{OUTPUT_PROBABILITIES}' from the {self.describe()} has shape {list(probabilities.shape)}"
            )
        label = response.get_output_by_name(OUTPUT_LABEL)
        labels = (
            label.as_numpy().astype(np.int64, copy=False).reshape(-1)
            if label is not None
            else probabilities.argmax(axis=1)
        )
        return Scores(
            labels=labels, probabilities=probabilities, model_version=response.model_version or None
        )
