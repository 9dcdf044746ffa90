"""The transformer as a KServe ``Model``: records in, the shared vectoriser, the predictor, labels out.

One lifecycle for both transports: :meth:`Transformer.vectorise` turns any accepted request (see
``serving_common.records``) into one float32 matrix (one 400 listing every problem of every
record), :meth:`Transformer.score` sends it to the predictor through the one
:class:`~serving_common.framework.predictor_client.PredictorClient`, and :meth:`v1_answer` /
:meth:`v2_answer` answer in the caller's protocol with the class name, its probability, the model
name and version and the request id. The REST routes (``routes.py``) call these directly;
KServe's gRPC server goes through the hooks (``preprocess``, ``predict``, ``postprocess``),
which call the same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from serving_common.framework.metadata import tensor
from serving_common.framework.predictor_client import PredictorClient, Scores, request_deadline
from serving_common.framework.records_model import RecordsModel
from serving_common.framework.status import grpc_code
from serving_common.headers import forwarded, new_id

from transformer import metrics, payload_log
from transformer.settings import TransformerSettings

if TYPE_CHECKING:
    from serving_common.payload_logger import PayloadLogger

__all__ = ["Batch", "Transformer"]

log = logging.getLogger("transformer")


@dataclass
class Batch:
    """One gRPC request on its way through KServe's hooks."""

    request_id: str
    matrix: np.ndarray
    request: InferRequest
    event_id: str | None = None
    scores: Scores | None = None


class Transformer(RecordsModel):
    """Serves ``name`` by calling the predictor of the same name."""

    platform = "kserve-transformer"

    def __init__(
        self,
        name: str,
        *,
        model_dir: str,
        predictor_host: str,
        predictor_protocol: str,
        settings: TransformerSettings,
        predictor_use_ssl: bool = False,
        payload_logger: PayloadLogger | None = None,
    ) -> None:
        client = PredictorClient(
            host=predictor_host,
            protocol=predictor_protocol,
            model_name=name,
            timeout=settings.predictor_timeout,
            use_ssl=predictor_use_ssl,
            retries=settings.predictor_retries,
            observe=metrics.PREDICTOR_SECONDS.labels(name, predictor_protocol).observe,
            on_expired=metrics.DEADLINE_EXPIRED.labels(name).inc,
        )
        super().__init__(name, model_dir=model_dir, client=client, max_records=settings.max_records)
        self.settings = settings
        self.payload_logger = payload_logger
        self.classes: list[str] = []
        self._closing: list[asyncio.Task[None]] = []

    # --- lifecycle ------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the feature spec and version from the bundle (the model itself stays with the predictor)."""
        self.open_bundle()
        assert self.spec is not None
        self.classes = list(self.spec.classes)
        self.ready = True
        log.info(
            "transformer for %s (version %s): %d features %s, classes %s; predictor: %s",
            self.name,
            self.version,
            self.spec.n_features,
            self.spec.names,
            self.classes,
            self.client.describe(),
        )
        return self.ready

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 metadata ``outputs``: what :meth:`v2_answer` returns."""
        k = len(self.classes)
        return [
            tensor("label", "BYTES", [-1]),
            tensor("probability", "FP32", [-1]),
            tensor("probabilities", "FP32", [-1, k]),
        ]

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing left to drain into
            loop = asyncio.get_running_loop()
            self._closing = [loop.create_task(self.client.close())]
            if self.payload_logger is not None and self.payload_logger.running:
                self._closing.append(loop.create_task(self.payload_logger.stop()))
        super().stop()

    # --- one lifecycle for REST and gRPC --------------------------------------------------

    async def start_logger(self) -> None:
        """Start the payload logger on the server's loop (idempotent)."""
        if self.payload_logger is not None and not self.payload_logger.running:
            await self.payload_logger.start()

    def log_exchange(
        self,
        event_id: str,
        request: bytes,
        content_type: str | None,
        response: bytes | None,
        received_ns: int,
    ) -> None:
        """One answered exchange, as KServe's agent logs it: the request event, and the response
        event when the answer was a 200 (``response`` is not ``None``)."""
        logger = self.payload_logger
        if logger is None:
            return
        logger.log_exchange(
            event_id, request, content_type, response is not None, response or b"", received_ns
        )

    async def score(
        self,
        matrix: np.ndarray,
        headers: dict[str, str],
        request_id: str,
        deadline: float | None = None,
    ) -> Scores:
        """The predictor's scores for ``matrix``, with the caller's trace headers forwarded, within
        the caller's ``deadline`` (``time.monotonic()`` seconds; by default read from ``headers``
        now, see ``predictor_client.request_deadline``)."""
        if deadline is None:
            deadline = request_deadline(headers)
        return await self.client.infer(matrix, forwarded(headers, request_id), request_id, deadline)

    def _labels(self, scores: Scores) -> tuple[list[str], list[float]]:
        """Class names of the labels, and each row's probability of its label."""
        classes, k = self.classes, len(self.classes)
        last = scores.probabilities.shape[1] - 1
        indices = scores.labels.tolist()
        labels = [classes[i] if 0 <= i < k else str(i) for i in indices]
        rows = scores.probabilities.tolist()
        probability = [row[min(max(i, 0), last)] for i, row in zip(indices, rows, strict=True)]
        return labels, probability

    def v1_answer(self, scores: Scores, request_id: str) -> dict[str, Any]:
        """``{"predictions": [{"label", "probability", "probabilities": {class: p}}], ...}``."""
        labels, probability = self._labels(scores)
        classes = self.classes
        return {
            "predictions": [
                {"label": label, "probability": p, "probabilities": dict(zip(classes, row, strict=False))}
                for label, p, row in zip(labels, probability, scores.probabilities.tolist(), strict=True)
            ],
            "model_name": self.name,
            "model_version": scores.model_version or self.version,
            "id": request_id,
        }

    def v2_document(self, scores: Scores, request_id: str) -> dict[str, Any]:
        """The V2 JSON answer, as :meth:`v2_answer` writes it when no binary output is asked for
        (FP32 values as the doubles they are, as the V1 answer writes them)."""
        labels, probability = self._labels(scores)
        n = len(labels)
        probabilities = scores.probabilities
        return {
            "id": request_id,
            "model_name": self.name,
            "model_version": scores.model_version or self.version,
            "outputs": [
                {"name": "label", "shape": [n], "datatype": "BYTES", "data": labels},
                {
                    "name": "probability",
                    "shape": [n],
                    "datatype": "FP32",
                    "data": probability,
                },
                {
                    "name": "probabilities",
                    "shape": list(probabilities.shape),
                    "datatype": "FP32",
                    "parameters": {"classes": ",".join(self.classes)},
                    "data": probabilities.reshape(-1).tolist(),
                },
            ],
        }

    def v2_answer(self, scores: Scores, request_id: str, request: InferRequest) -> InferResponse:
        """Outputs ``label`` BYTES, ``probability`` FP32, ``probabilities`` FP32 ``[n, k]``."""
        labels, probability = self._labels(scores)
        outputs = [
            InferOutput("label", [len(labels)], "BYTES", np.array(labels, dtype=np.object_)),
            InferOutput("probability", [len(labels)], "FP32", np.array(probability, dtype=np.float32)),
            InferOutput(
                "probabilities",
                list(scores.probabilities.shape),
                "FP32",
                scores.probabilities,
                parameters={"classes": ",".join(self.classes)},
            ),
        ]
        return InferResponse(
            response_id=request_id,
            model_name=self.name,
            model_version=scores.model_version or self.version,
            infer_outputs=outputs,
            use_binary_outputs=request.use_binary_outputs,
            requested_outputs=request.request_outputs,
        )

    # --- gRPC: KServe's hook chain --------------------------------------------------------

    async def __call__(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> Any:
        """KServe's hook chain (gRPC only: REST is answered in ``routes.py``), counted here."""
        start = time.perf_counter()
        code = "OK"
        try:
            return await super().__call__(body, headers, verb)
        except Exception as e:
            code = grpc_code(e)
            log.warning("gRPC request failed (%s): %s", code, e)
            raise
        finally:
            metrics.REQUEST_METRICS.done(self.name, "grpc_v2", code, time.perf_counter() - start)

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Batch:
        if not isinstance(payload, InferRequest):
            raise TypeError(f"expected a V2 request from KServe's gRPC server, not {type(payload).__name__}")
        event_id: str | None = None
        if self.payload_logger is not None:
            await self.start_logger()
            event_id = (headers or {}).get("ce-id") or payload.id or new_id()
            self.payload_logger.log_request(
                event_id, payload_log.grpc_request(payload), payload_log.CONTENT_TYPE
            )
        rid, matrix = self.vectorise(payload, headers)
        return Batch(rid, matrix, payload, event_id)

    async def predict(
        self,
        payload: Batch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Batch:
        payload.scores = await self.score(payload.matrix, headers or {}, payload.request_id)
        return payload

    async def postprocess(
        self,
        result: Batch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        assert result.scores is not None
        response = self.v2_answer(result.scores, result.request_id, result.request)
        if self.payload_logger is not None and result.event_id is not None:
            document = payload_log.v2_document(self.v2_document(result.scores, result.request_id))
            self.payload_logger.log_response(result.event_id, document, payload_log.CONTENT_TYPE)
        return response
