"""Inference routes answered at the ASGI level, in front of KServe's FastAPI app, and the
``ModelServer`` that serves them on uvloop.

KServe's app stays for everything else (health, readiness, metadata, ``/metrics``, its gRPC
server). A :class:`Front` answers the POST paths its ``route`` function claims before the
request enters FastAPI's middleware stack and router: no request or response models, no
per-request Request/Response objects (on one core FastAPI's stack alone cost more than the
transformer's own work: decode, validate, vectorise, call the predictor, encode).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_repository import ModelRepository
from kserve.model_server import args as kserve_args
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.rest.server import RESTServer
from uvicorn.importer import import_from_string

__all__ = ["Answer", "Front", "FrontServer", "Handler", "Route"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Answer:
    """What a handler answers: status, body, its content type and any other headers."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


Handler = Callable[[str, bytes, dict[str, str]], Awaitable[Answer]]
"""``(model name, body, request headers with lower-case names) -> Answer``."""
Route = Callable[[str], tuple[Handler, str] | None]
"""``path -> (handler, model name)`` for a path the front answers, else ``None``."""


class Front:
    """An ASGI app: the POST paths ``route`` claims, everything else passed on to ``app``."""

    def __init__(self, app: ASGIApp, route: Route) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = self.route(scope["path"])
            if target is not None:
                body = await _read_body(receive)
                if body is None:  # the client went away
                    return
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                answer = await target[0](target[1], body, headers)
                start = {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": [
                        (b"content-type", answer.content_type),
                        (b"content-length", str(len(answer.body)).encode()),
                        *answer.headers,
                    ],
                }
                await send(start)
                await send({"type": "http.response.body", "body": answer.body})
                return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _FrontRESTServer(RESTServer):  # type: ignore[misc]
    route: Route | None = None
    access_log = True

    def create_application(self) -> None:
        super().create_application()
        if self.route is not None:
            self.config.app = Front(import_from_string(FASTAPI_APP_IMPORT_STRING), self.route)
        # off at the source: uvicorn formats each access line's arguments before the logger's level check
        self.config.access_log = self.access_log


class FrontServer(ModelServer):  # type: ignore[misc]
    """KServe's ModelServer with a :class:`Front` before its REST app, on uvloop, one worker
    (the routes and the model live in this process; scale with replicas); ``access_log``: uvicorn's
    line per request."""

    def __init__(
        self, *, routes: Callable[[ModelRepository], Route], access_log: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.route = routes(self.registered_models)
        self.access_log = access_log

    def start(self, models: list[Any]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        rest = _FrontRESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            workers=1,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
        )
        rest.route = self.route
        rest.access_log = self.access_log
        self._rest_server = rest
        self.servers.append(rest.start())
        if self.enable_grpc:
            self._grpc_server = GRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                kwargs=vars(kserve_args),
                grace_period=self.grace_period,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        import uvloop

        # KServe's own start() configures one loop and then runs another (asyncio.run); here the
        # loop it configures (exception handler, executor) is the loop that runs.
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        self.setup_event_loop()
        self.register_signal_handler()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()
