"""The REST inference routes (V1 ``:predict``, V2 ``/infer`` and its versions path), answered at
the ASGI level in front of KServe's app (``serving_common.framework.front``).

Bodies are read either way a client sends them (JSON alone, or JSON plus binary tensors: KServe
0.21's own V2 route refuses tritonclient's JSON without a content type), records go straight
into the float32 matrix through the one vectoriser, the predictor is called through the one
client, and the answer is written with orjson. Every error is ``{"error": message}`` with its
status from the one status table; every request, including those whose body cannot be read, is
counted in ``transformer_requests_total`` (an unknown model name is never a label value). With
``--logger_url`` the request event (the bytes as received, their content type) is queued before
the answer is sent, the response event only for a 200, both with the same ``ce-id``.
Everything else (health, readiness, metadata, ``/metrics``) stays KServe's; gRPC is ``model.py``.
"""

from __future__ import annotations

import logging
import time

import orjson
from kserve.errors import ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from serving_common.framework.front import Answer, Handler
from serving_common.framework.predictor_client import request_deadline
from serving_common.framework.records_model import vectorise_v1, vectorise_v2
from serving_common.framework.rest import HEADER_LENGTH, decode_v2, json_columns, loads
from serving_common.framework.status import http_status, public_message
from serving_common.headers import new_id, request_id

from transformer import metrics
from transformer.model import Transformer

__all__ = ["InferenceRoutes"]

log = logging.getLogger("transformer.rest")

JSON = b"application/json"
OCTET = b"application/octet-stream"
_V2_PREFIX, _V2_SUFFIX = "/v2/models/", "/infer"
_V1_PREFIX, _V1_SUFFIX = "/v1/models/", ":predict"


class InferenceRoutes:
    """The handlers of the transformer's inference paths, over KServe's model registry."""

    def __init__(self, registry: ModelRepository) -> None:
        self.registry = registry

    def route(self, path: str) -> tuple[Handler, str] | None:
        """``(handler, model name)`` for an inference path, else ``None``."""
        if path.startswith(_V2_PREFIX) and path.endswith(_V2_SUFFIX):
            name = path[len(_V2_PREFIX) : -len(_V2_SUFFIX)]
            if "/versions/" in name:
                name = name.split("/versions/", 1)[0]
            return (self.infer_v2, name) if name and "/" not in name else None
        if path.startswith(_V1_PREFIX) and path.endswith(_V1_SUFFIX):
            name = path[len(_V1_PREFIX) : -len(_V1_SUFFIX)]
            return (self.predict_v1, name) if name and "/" not in name else None
        return None

    def _model(self, name: str) -> Transformer:
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        assert isinstance(model, Transformer)
        return model

    async def predict_v1(self, name: str, body: bytes, headers: dict[str, str]) -> Answer:
        start = time.perf_counter()
        deadline = request_deadline(headers)  # from arrival: the vectorising counts against it
        rid = headers.get("x-request-id") or new_id()
        model: Transformer | None = None
        try:
            model = self._model(name)
            await model.start_logger()
            assert model.spec is not None
            matrix = vectorise_v1(loads(body), model.spec, model.max_records)
            scores = await model.score(matrix, headers, rid, deadline)
            answer = Answer(
                200,
                orjson.dumps(model.v1_answer(scores, rid)),
                JSON,
                [(b"x-request-id", rid.encode("latin-1"))],
            )
        except Exception as exc:
            answer = _error(exc, name, "rest_v1", rid)
        return self._done(model, name, "rest_v1", start, headers, rid, body, answer)

    async def infer_v2(self, name: str, body: bytes, headers: dict[str, str]) -> Answer:
        start = time.perf_counter()
        deadline = request_deadline(headers)
        rid = headers.get("x-request-id")
        model: Transformer | None = None
        try:
            model = self._model(name)
            await model.start_logger()
            assert model.spec is not None
            plain = json_columns(body, headers)
            if plain is not None:  # JSON in, JSON out: no InferRequest / InferResponse
                rid = request_id(headers, plain[0])
                matrix = vectorise_v2(plain[1], model.spec, model.max_records)
                scores = await model.score(matrix, headers, rid, deadline)
                document = orjson.dumps(model.v2_document(scores, rid), option=orjson.OPT_SERIALIZE_NUMPY)
                return self._done(
                    model, name, "rest_v2", start, headers, rid, body, Answer(200, document, JSON, _rid(rid))
                )
            request = decode_v2(body, headers.get(HEADER_LENGTH), name)
            rid, matrix = model.vectorise(request, headers)
            scores = await model.score(matrix, headers, rid, deadline)
            content, json_length = model.v2_answer(scores, rid, request).to_rest()
            extra = _rid(rid)
            if json_length is None:
                answer = Answer(200, orjson.dumps(content), JSON, extra)
            else:
                extra.append((HEADER_LENGTH.encode(), str(json_length).encode()))
                answer = Answer(200, content, OCTET, extra)
        except Exception as exc:
            answer = _error(exc, name, "rest_v2", rid or "-")
        return self._done(model, name, "rest_v2", start, headers, rid, body, answer)

    @staticmethod
    def _done(
        model: Transformer | None,
        name: str,
        protocol: str,
        start: float,
        headers: dict[str, str],
        rid: str | None,
        body: bytes,
        answer: Answer,
    ) -> Answer:
        if model is not None and model.payload_logger is not None:
            event_id = headers.get("ce-id") or rid or new_id()
            response = answer.body if answer.status == 200 else None
            received_ns = time.time_ns() - int((time.perf_counter() - start) * 1e9)
            model.log_exchange(event_id, body, headers.get("content-type"), response, received_ns)
        if answer.status != 404:  # an unknown model's name is whatever a client sends: not a label
            metrics.REQUEST_METRICS.done(name, protocol, str(answer.status), time.perf_counter() - start)
        return answer


def _rid(request_id: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-request-id", request_id.encode("latin-1"))]


def _error(exc: Exception, name: str, protocol: str, rid: str) -> Answer:
    status = http_status(exc)
    if status >= 500:
        log.error(
            "%s %s request %s failed (%d): %s", name, protocol, rid, status, exc, exc_info=status == 500
        )
    else:
        log.info("%s %s request %s rejected (%d): %s", name, protocol, rid, status, exc)
    return Answer(status, orjson.dumps({"error": public_message(exc, status, rid)}), JSON)
