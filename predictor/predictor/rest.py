"""The REST inference paths (V2 ``/infer``, V1 ``:predict``), served in front of KServe's app.

KServe's FastAPI app stays for everything else (health, readiness, metadata, repository,
``/metrics``). The two inference paths are answered here, at the ASGI level, before the
request enters FastAPI's middleware stack and router: no request or response models, no
per-request Request/Response objects, bodies decoded straight into numpy (``codec.py``),
results written straight from numpy. Measured on one core: FastAPI's stack alone cost more
than decode, validation and inference together. Every client exchange goes through the payload
hook (``payload_hook.py``) before it is answered; ``caller.py`` labels explainer calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kserve.errors import ModelNotFound, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferResponse
from serving_common.limits import LimitExceeded, Limits, read_body
from serving_common.operability import tracing
from serving_common.operability.logs import REQUEST_ID, TRACE_ID, trace_id_of

from predictor import codec, metrics
from predictor.caller import CALLER_HEADER, CLIENT, caller
from predictor.errors import http_status
from predictor.ids import new_id
from predictor.model import OnnxModel
from predictor.payload_hook import PayloadHook

log = logging.getLogger("predictor.rest")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = b"application/json"
OCTET = b"application/octet-stream"

_V2_PREFIX, _V2_SUFFIX = "/v2/models/", "/infer"
_V1_PREFIX, _V1_SUFFIX = "/v1/models/", ":predict"


def route(path: str) -> tuple[str, str] | None:
    """``(protocol, model name)`` for an inference path, else ``None``."""
    if path.startswith(_V2_PREFIX) and path.endswith(_V2_SUFFIX):
        name = path[len(_V2_PREFIX) : -len(_V2_SUFFIX)]
        if "/versions/" in name:
            name = name.split("/versions/", 1)[0]
        return ("rest_v2", name) if name and "/" not in name else None
    if path.startswith(_V1_PREFIX) and path.endswith(_V1_SUFFIX):
        name = path[len(_V1_PREFIX) : -len(_V1_SUFFIX)]
        return ("rest_v1", name) if name and "/" not in name else None
    return None


class FastPath:
    """An ASGI app: our inference paths, everything else passed on to ``app`` (KServe's)."""

    def __init__(
        self,
        app: ASGIApp,
        registry: ModelRepository,
        limits: Limits,
        payload_hook: PayloadHook | None = None,
    ) -> None:
        self.app = app
        self.registry = registry
        self.limits = limits
        self.payload_hook = payload_hook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = route(scope["path"])
            if target is not None:
                if tracing.enabled():
                    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                    with tracing.server_span(f"POST {scope['path']}", headers, model=target[1]):
                        await self._serve(target[0], target[1], scope, receive, send)
                    return
                await self._serve(target[0], target[1], scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _model(self, name: str) -> OnnxModel:
        model = self.registry.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        if not model.ready:
            raise ModelNotReady(name)
        assert isinstance(model, OnnxModel)
        return model

    async def _serve(self, protocol: str, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        received_ns = time.time_ns()
        try:
            body = await read_body(receive, self.limits)
        except LimitExceeded as e:  # refused before the body is read whole; the connection closes
            log.info("rejected request (%d): %s", e.status, e.message)
            await _answer(send, e.status, codec.dumps({"error": e.message}), [(b"connection", b"close")])
            return
        if body is None:  # the client went away
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        who = caller(headers.get(CALLER_HEADER))
        request_id = headers.get("x-request-id") or new_id()
        REQUEST_ID.set(request_id)  # on every log line about this request (and uvicorn's access line)
        if not tracing.enabled():  # else the span set it
            TRACE_ID.set(trace_id_of(headers.get("traceparent")))
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        try:
            model = self._model(name)
            if protocol == "rest_v2":
                content, content_type, json_length = await self._infer_v2(
                    model, name, body, headers, request_id
                )
                if json_length is not None:
                    extra.append((codec.HEADER_LENGTH.encode(), str(json_length).encode()))
            else:
                result = await model.predict(codec.loads(body), headers)
                content, content_type = codec.dumps(result), JSON
            status = 200
        except Exception as exc:
            status = http_status(exc)
            message = str(exc)
            if status == 500:  # no internals in the answer: an id the log line carries
                error_id = new_id()
                log.error("inference failed (error id %s): %s", error_id, exc, exc_info=exc)
                message = f"internal error (error id {error_id})"
            else:
                log.info("rejected request (%d): %s", status, exc)
            content, content_type = codec.dumps({"error": message}), JSON
        if self.payload_hook is not None and who == CLIENT:  # queued before the answer goes out
            self.payload_hook.log_exchange(
                headers, body, headers.get("content-type"), status == 200, content, received_ns
            )
        await _answer(send, status, content, extra, content_type)
        if status != 404:  # an unknown model's name is whatever a client sends: not a label
            metrics.REQUEST_METRICS.done(
                name, protocol, str(status), status == 200, time.perf_counter() - start, who
            )

    @staticmethod
    async def _infer_v2(
        model: OnnxModel, name: str, body: bytes, headers: dict[str, str], request_id: str
    ) -> tuple[bytes, bytes, int | None]:
        request, binary_all = codec.decode_v2(body, headers.get(codec.HEADER_LENGTH), name)
        if not request.id:
            request.id = request_id
        result = await model.predict(request, headers)
        assert isinstance(result, InferResponse)
        content, json_length = codec.encode_v2(result, codec.binary_outputs(request, binary_all), binary_all)
        return content, (JSON if json_length is None else OCTET), json_length


async def _answer(
    send: Send, status: int, content: bytes, extra: list[tuple[bytes, bytes]], content_type: bytes = JSON
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(content)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
