"""The transformer as a KServe ``Model``: records in, the shared vectoriser, the predictor, labels out.

``preprocess`` turns any accepted request (see ``records.py``) into one float32 matrix with
:meth:`FeatureSpec.check` (one 400 listing every problem of every record), ``predict`` sends
it to the predictor through the one :class:`~transformer.client.PredictorClient`, and
``postprocess`` answers in the caller's protocol with the class name, its probability, the
model name and version and the request id.
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
from serving_common.headers import forwarded
from serving_common.predictor_client import target
from serving_common.predictor_errors import grpc_code
from serving_common.records_model import RecordsModel

from transformer import bodies, metrics
from transformer.client import PredictorClient, Scores
from transformer.settings import TransformerSettings

if TYPE_CHECKING:
    from serving_common.payload_logger import PayloadLogger

__all__ = ["Batch", "Transformer"]

log = logging.getLogger("transformer")


@dataclass
class Batch:
    """One request on its way through the hooks."""

    request_id: str
    protocol: str
    """How the caller came in: ``rest_v1``, ``rest_v2`` or ``grpc_v2``."""
    matrix: np.ndarray
    request: InferRequest | None = None
    scores: Scores | None = None
    event_id: str | None = None
    """The payload logger's id for this request (``ce-id``), when logging."""


def caller_protocol(body: Any) -> str:
    if isinstance(body, InferRequest):
        return "grpc_v2" if body.from_grpc else "rest_v2"
    return "rest_v1"


class Transformer(RecordsModel[PredictorClient]):
    """Serves ``name`` by calling the predictor of the same name."""

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
            retries=settings.predictor_retries,
            **target(name, predictor_host, predictor_protocol, settings.predictor_timeout, predictor_use_ssl),
        )
        super().__init__(
            name,
            model_dir=model_dir,
            client=client,
            max_records=settings.max_records,
            return_response_headers=True,
        )
        self.settings = settings
        self.payload_logger = payload_logger

    # --- lifecycle ------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the feature spec and version from the bundle (the model itself stays with the predictor)."""
        self.open_bundle()
        assert self.spec is not None
        self.ready = True
        log.info(
            "transformer for %s (version %s): %d features %s, classes %s; predictor: %s",
            self.name,
            self.version,
            self.spec.n_features,
            self.spec.names,
            list(self.spec.classes),
            self.client.describe(),
        )
        return self.ready

    def stop(self) -> None:
        if self.payload_logger is not None and self.payload_logger.running:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing left to drain into
                asyncio.get_running_loop().create_task(self.payload_logger.stop())
        super().stop()

    async def _log_request(self, body: Any, headers: dict[str, str] | None) -> str | None:
        logger = self.payload_logger
        if logger is None:
            return None
        from serving_common.payload_logger import request_id as event_id

        if not logger.running:
            await logger.start()
        eid = event_id(headers)
        logger.log_request(eid, bodies.dumps(body), bodies.CONTENT_TYPE)
        return eid

    # --- metrics around KServe's hook chain -----------------------------------------------

    async def __call__(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> Any:
        """KServe's hook chain; gRPC requests are counted here (REST ones in ``rest.py``)."""
        if caller_protocol(body) != "grpc_v2":
            return await super().__call__(body, headers, verb)
        start = time.perf_counter()
        code = "OK"
        try:
            return await super().__call__(body, headers, verb)
        except Exception as e:
            code = grpc_code(e)
            log.warning("gRPC request failed (%s): %s", code, e)
            raise
        finally:
            metrics.REQUESTS.labels(self.name, "grpc_v2", code).inc()
            metrics.REQUEST_SECONDS.labels(self.name, "grpc_v2").observe(time.perf_counter() - start)

    def _log_response(self, result: Batch, body: dict[str, Any]) -> None:
        if self.payload_logger is not None and result.event_id is not None:
            self.payload_logger.log_response(result.event_id, bodies.dumps(body), bodies.CONTENT_TYPE)

    # --- hooks ----------------------------------------------------------------------------

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Batch:
        assert self.spec is not None
        eid = await self._log_request(payload, headers)
        rid, matrix = self.vectorise(payload, headers)
        request = payload if isinstance(payload, InferRequest) else None
        return Batch(
            request_id=rid, protocol=caller_protocol(payload), matrix=matrix, request=request, event_id=eid
        )

    async def predict(
        self,
        payload: Batch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Batch:
        payload.scores = await self.client.infer(
            payload.matrix, forwarded(headers, payload.request_id), payload.request_id
        )
        return payload

    async def postprocess(
        self,
        result: Batch,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        assert self.spec is not None and result.scores is not None
        scores = result.scores
        classes = list(self.spec.classes)
        labels = [classes[i] if 0 <= i < len(classes) else str(i) for i in scores.labels.tolist()]
        rows = np.arange(len(labels))
        picked = np.clip(scores.labels, 0, scores.probabilities.shape[1] - 1)
        probability = scores.probabilities[rows, picked].astype(np.float32)
        version = scores.model_version or self.version
        if response_headers is not None:
            response_headers["x-request-id"] = result.request_id
        if result.request is None:
            body = {
                "predictions": [
                    {
                        "label": label,
                        "probability": float(p),
                        "probabilities": dict(zip(classes, map(float, row), strict=False)),
                    }
                    for label, p, row in zip(labels, probability, scores.probabilities, strict=True)
                ],
                "model_name": self.name,
                "model_version": version,
                "id": result.request_id,
            }
            self._log_response(result, body)
            return body
        outputs = [
            InferOutput("label", [len(labels)], "BYTES", np.array(labels, dtype=np.object_)),
            InferOutput("probability", [len(labels)], "FP32", probability),
            InferOutput(
                "probabilities",
                list(scores.probabilities.shape),
                "FP32",
                scores.probabilities.astype(np.float32, copy=False),
                parameters={"classes": ",".join(classes)},
            ),
        ]
        self._log_response(
            result,
            {
                "id": result.request_id,
                "model_name": self.name,
                "model_version": version,
                "outputs": [
                    {
                        "name": o.name,
                        "shape": o.shape,
                        "datatype": o.datatype,
                        "data": o.data.reshape(-1).tolist(),
                    }
                    for o in outputs
                ],
            },
        )
        return InferResponse(
            response_id=result.request_id,
            model_name=self.name,
            model_version=version,
            infer_outputs=outputs,
            use_binary_outputs=result.request.use_binary_outputs,
            requested_outputs=result.request.request_outputs,
        )
