"""The predictor's ModelServer: KServe's, with our inference paths in front of its REST app, our
threaded gRPC server (``grpc_service.py``) instead of its grpc.aio one, and the loop on uvloop.

``ModelServer.start`` builds KServe's REST and gRPC servers itself, so this subclass repeats
its few steps with our two server classes; everything else (model registration and readiness,
the data plane, KServe's routes, signal handling, graceful stop) is KServe's own.
One process, one worker: scale with replicas (``--workers`` above 1 is logged and ignored).

Hardening (``guard.py``, ``drain.py``): the REST app is :class:`~predictor.guard.Guard` around the
fast path (routes, limits, shedding); model-repository management is served only when
``PREDICTOR_MANAGEMENT_PORT`` is set, on that port (REST) and never on the inference ports; SIGTERM
drains (:class:`~predictor.drain.Drain`) and then stops both servers gracefully on this one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.rest.server import RESTServer
from serving_common.drain import CloseWhileDraining
from serving_common.operability.asgi import RequestIds
from uvicorn import Config, Server
from uvicorn.importer import import_from_string

from predictor.drain import Drain, DrainingServer
from predictor.grpc_service import InferenceService, ThreadedGRPCServer
from predictor.guard import ManagementApp, gate
from predictor.payload_hook import PayloadHook
from predictor.rest import FastPath
from predictor.settings import PredictorSettings

log = logging.getLogger("predictor")


class FastRESTServer(RESTServer):  # type: ignore[misc]
    """KServe's REST server whose ASGI app is :class:`FastPath` around KServe's FastAPI app."""

    payload_hook: PayloadHook | None = None

    def harden(self, settings: PredictorSettings, drain: Drain) -> None:
        self.settings = settings
        self.limits = settings.limits("PREDICTOR_")
        self.drain = drain
        self._server = DrainingServer(self.config, drain)

    def create_application(self) -> None:
        super().create_application()
        app = import_from_string(FASTAPI_APP_IMPORT_STRING)
        fast = FastPath(app, self.dataplane.model_registry, self.limits, self.payload_hook)
        self.config.app = RequestIds(CloseWhileDraining(gate(fast, self.settings, self.drain), self.drain))


class OnnxDataPlane(DataPlane):  # type: ignore[misc]
    """KServe's data plane, whose REST model metadata says what the gRPC one says: platform
    ``onnxruntime`` and the served bundle's version (KServe's answers ``""`` and no versions). Its
    server metadata claims no extension: model-repository routes are off on the inference ports."""

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "extensions": []}

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        version = getattr(self.get_model_from_registry(model_name), "version", None)
        return {**metadata, "platform": "onnxruntime", "versions": [version] if version else []}


class PredictorServer(ModelServer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        settings: PredictorSettings,
        payload_hook: PayloadHook | None = None,
        uvloop: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(grace_period=settings.grace_seconds, **kwargs)
        self.dataplane = OnnxDataPlane(model_registry=self.registered_models)
        self.settings = settings
        self.payload_hook = payload_hook
        self.use_uvloop = uvloop
        self.drain = Drain(settings.drain_seconds)
        self._grpc: ThreadedGRPCServer | None = None

    def start(self, models: list[Any]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        if self.workers > 1:
            log.warning("--workers %d ignored: one process per replica (scale with replicas)", self.workers)
        rest = FastRESTServer(
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
        rest.payload_hook = self.payload_hook
        rest.harden(self.settings, self.drain)
        self._rest_server = rest
        self.servers.append(rest.start())
        if self.settings.management_port:
            self.servers.append(self._management(rest))
        if self.use_uvloop:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        # KServe's own start() configures one loop and then runs another (asyncio.run); here the
        # loop it configures (exception handler, executor) is the loop that runs.
        asyncio.set_event_loop(loop)
        if self.enable_grpc:
            from kserve.model_server import args as kserve_args

            grpc_server = ThreadedGRPCServer(
                self.grpc_port,
                InferenceService(self.dataplane, loop, self.drain, self.payload_hook),
                threads=self.max_threads,
                options=[
                    ("grpc.so_reuseport", 0),  # a port in use is an error, never silently shared
                    ("grpc.max_send_message_length", kserve_args.grpc_max_send_message_length),
                    (
                        "grpc.max_receive_message_length",
                        min(kserve_args.grpc_max_receive_message_length, self.settings.max_body_bytes),
                    ),
                    # metadata as large as the REST headers we take (gRPC's default is 8 KiB: a
                    # 16 KB Authorization forwarded by the transformer failed the hop)
                    ("grpc.max_metadata_size", self.settings.max_header_bytes),
                ],
                grace_period=self.grace_period,
                max_inflight=self.settings.grpc_max_inflight,
            )
            grpc_server.start()
            self._grpc = grpc_server
        self.setup_event_loop()  # no register_signal_handler(): the drain owns SIGTERM / SIGINT
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        await asyncio.gather(*self.servers, self._stop_grpc_after_drain())
        log.info("stopped")

    async def _stop_grpc_after_drain(self) -> None:
        await self.drain.stopping().wait()
        if self._grpc is not None:
            await self._grpc.stop()

    async def _management(self, rest: FastRESTServer) -> None:
        """The management port: KServe's repository routes only (REST), stopped with the rest."""
        app = import_from_string(FASTAPI_APP_IMPORT_STRING)
        config = Config(
            ManagementApp(app, rest.limits),
            host="0.0.0.0",
            port=self.settings.management_port,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=int(self.grace_period),
        )
        server = Server(config)
        server.capture_signals = _no_signals  # type: ignore[method-assign]
        self.drain.on_stop(lambda: setattr(server, "should_exit", True))
        log.warning("model repository management is served on port %d", self.settings.management_port)
        await server.serve()


@contextlib.contextmanager
def _no_signals() -> Iterator[None]:
    yield
