"""Inference routes answered at the ASGI level, in front of KServe's FastAPI app, and the
``ModelServer`` that serves them on uvloop.

KServe's app stays for everything else (health, readiness, metadata, ``/metrics``, its gRPC
server). A :class:`Front` answers the POST paths its ``route`` function claims before the
request enters FastAPI's middleware stack and router: no request or response models, no
per-request Request/Response objects (on one core FastAPI's stack alone cost more than the
transformer's own work: decode, validate, vectorise, call the predictor, encode).

Hardening (issue 15): in front of everything a :class:`serving_common.gate.Gate` (routes,
limits, shedding, readiness while draining); SIGTERM drains (:mod:`serving_common.drain`) and then
stops the REST and gRPC servers gracefully on this one loop; the gRPC port never serves
model-repository management (:class:`NoManagement`: UNIMPLEMENTED), takes messages up to
``<PREFIX>MAX_BODY_BYTES`` and is never shared (``grpc_server.ExclusiveGRPCServer``, bound before
REST serves); every REST answer carries ``x-request-id`` (``operability.asgi.RequestIds``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from grpc_interceptor.exceptions import Unimplemented
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.model_repository import ModelRepository
from kserve.model_server import args as kserve_args
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer, _RefreshingServer
from uvicorn.importer import import_from_string

from serving_common.drain import CloseWhileDraining, Drain, DrainingMixin
from serving_common.framework.grpc_server import ExclusiveGRPCServer
from serving_common.framework.metadata import MetadataDataPlane
from serving_common.gate import Gate, GatePolicy, GateSettings
from serving_common.headers import new_id
from serving_common.operability import tracing
from serving_common.operability.asgi import RequestIds
from serving_common.operability.logs import REQUEST_ID, TRACE_ID, trace_id_of

__all__ = ["Answer", "Front", "FrontServer", "Handler", "NoManagement", "Route"]

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
                REQUEST_ID.set(headers.get("x-request-id"))  # log lines about this request carry it
                if tracing.enabled():  # the predictor call then carries this span's traceparent
                    with tracing.server_span(f"POST {scope['path']}", headers, model=target[1]):
                        answer = await target[0](target[1], body, dict(tracing.outgoing(headers)))
                else:
                    TRACE_ID.set(trace_id_of(headers.get("traceparent")))
                    answer = await target[0](target[1], body, headers)
                answered = next((v for k, v in answer.headers if k == b"x-request-id"), None)
                if answered is None:  # every answer names its request
                    answered = (headers.get("x-request-id") or new_id()).encode("latin-1")
                    answer.headers.append((b"x-request-id", answered))
                REQUEST_ID.set(answered.decode("latin-1"))  # and so does the access line
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


class NoManagement(ModelRepositoryExtension):  # type: ignore[misc]
    """The gRPC servicer's repository extension: load / unload are UNIMPLEMENTED, never served."""

    def __init__(self) -> None:
        pass

    async def load(self, model_name: str) -> dict[str, Any]:
        raise Unimplemented("model repository management is not served on this port")

    async def unload(self, model_name: str) -> dict[str, Any]:
        raise Unimplemented("model repository management is not served on this port")


class _DrainingDataPlane:
    """KServe's data plane for the gRPC servicer, whose readiness is false while draining."""

    def __init__(self, dataplane: Any, drain: Drain) -> None:
        self._dataplane = dataplane
        self._drain = drain

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataplane, name)

    async def ready(self) -> bool:
        return not self._drain.draining and bool(await self._dataplane.ready())

    async def model_ready(self, model_name: str, disable_predictor_health_check: bool = False) -> bool:
        ready = await self._dataplane.model_ready(model_name, disable_predictor_health_check)
        return not self._drain.draining and bool(ready)


class _DrainingServer(DrainingMixin, _RefreshingServer):  # type: ignore[misc]
    def __init__(self, config: Any, drain: Drain) -> None:
        super().__init__(config)
        self.attach(drain)


class _FrontRESTServer(RESTServer):  # type: ignore[misc]
    route: Route | None = None
    access_log = True
    policy: GatePolicy
    drain: Drain
    on_refused: Callable[[str], None] | None = None

    def harden(self, policy: GatePolicy, drain: Drain, on_refused: Callable[[str], None] | None) -> None:
        self.policy, self.drain, self.on_refused = policy, drain, on_refused
        self._server = _DrainingServer(self.config, drain)

    def create_application(self) -> None:
        super().create_application()
        app = import_from_string(FASTAPI_APP_IMPORT_STRING)
        if self.route is not None:
            app = Front(app, self.route)
        gate = Gate(app, self.policy, self.drain, self.on_refused)
        # x-request-id on every answer, the gate's refusals and KServe's own routes too
        self.config.app = RequestIds(CloseWhileDraining(gate, self.drain))
        # off at the source: uvicorn formats each access line's arguments before the logger's level check
        self.config.access_log = self.access_log


class FrontServer(ModelServer):  # type: ignore[misc]
    """KServe's ModelServer with a gate and a :class:`Front` (``routes``, optional) before its REST
    app, on uvloop, one worker (the routes and the model live in this process; scale with
    replicas); ``access_log``: uvicorn's line per request; ``settings``: limits, shedding, drain."""

    def __init__(
        self,
        *,
        routes: Callable[[ModelRepository], Route] | None,
        settings: GateSettings,
        component: Literal["transformer", "explainer"],
        prefix: str,
        on_refused: Callable[[str], None] | None = None,
        access_log: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(grace_period=settings.grace_seconds, **kwargs)
        self.dataplane = MetadataDataPlane(model_registry=self.registered_models)
        self.route = routes(self.registered_models) if routes is not None else None
        self.access_log = access_log
        self.settings = settings
        self.on_refused = on_refused
        self.policy = GatePolicy(
            component=component,
            serves="explain" if component == "explainer" else "infer",
            prefix=prefix,
            limits=settings.limits(prefix),
            max_inflight=settings.max_inflight,
            retry_after_seconds=settings.retry_after_seconds,
            cancel_on_disconnect=component == "explainer",  # seconds of work per request
        )
        self.drain = Drain(
            settings.drain_seconds, what="inference" if component == "transformer" else "explanations"
        )

    def start(self, models: list[Any]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        import uvloop

        # KServe's own start() configures one loop and then runs another (asyncio.run); here the
        # loop it configures (exception handler, executor) is the loop that runs.
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            if self.enable_grpc:  # bound first: a taken port stops the start before REST serves
                options = dict(vars(kserve_args))
                options["grpc_max_receive_message_length"] = min(
                    int(options.get("grpc_max_receive_message_length") or self.settings.max_body_bytes),
                    self.settings.max_body_bytes,
                )
                grpc_server = ExclusiveGRPCServer(
                    self.grpc_port,
                    _DrainingDataPlane(self.dataplane, self.drain),
                    NoManagement(),
                    kwargs=options,
                    grace_period=self.grace_period,
                )
                grpc_server.bind(self.max_threads)
                self._grpc_server = grpc_server
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
            rest.harden(self.policy, self.drain, self.on_refused)
            self._rest_server = rest
            self.servers.append(rest.start())
            if self._grpc_server is not None:
                self.servers.append(self._grpc_server.start(self.max_threads))
            self.setup_event_loop()  # no register_signal_handler(): the drain owns SIGTERM / SIGINT
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        await asyncio.gather(*self.servers, self._stop_grpc_after_drain())

    async def _stop_grpc_after_drain(self) -> None:
        await self.drain.stopping().wait()
        if self._grpc_server is not None:
            await self._grpc_server.stop(signal.SIGTERM)
