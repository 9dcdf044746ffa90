"""The predictor's ModelServer: KServe's, with our inference paths in front of its REST app, our
threaded gRPC server (``grpc_service.py``) instead of its grpc.aio one, and the loop on uvloop.

``ModelServer.start`` builds KServe's REST and gRPC servers itself, so this subclass repeats
its few steps with our two server classes; everything else (model registration and readiness,
the data plane, KServe's routes, signal handling, graceful stop) is KServe's own.
One process, one worker: scale with replicas (``--workers`` above 1 is logged and ignored).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.rest.server import RESTServer
from uvicorn.importer import import_from_string

from predictor.grpc_service import InferenceService, ThreadedGRPCServer
from predictor.payload_hook import PayloadHook
from predictor.rest import FastPath

log = logging.getLogger("predictor")


class FastRESTServer(RESTServer):  # type: ignore[misc]
    """KServe's REST server whose ASGI app is :class:`FastPath` around KServe's FastAPI app."""

    payload_hook: PayloadHook | None = None

    def create_application(self) -> None:
        super().create_application()
        app = import_from_string(FASTAPI_APP_IMPORT_STRING)
        self.config.app = FastPath(app, self.dataplane.model_registry, self.payload_hook)


class OnnxDataPlane(DataPlane):  # type: ignore[misc]
    """KServe's data plane, whose REST model metadata says what the gRPC one says: platform
    ``onnxruntime`` and the served bundle's version (KServe's answers ``""`` and no versions)."""

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        version = getattr(self.get_model_from_registry(model_name), "version", None)
        return {**metadata, "platform": "onnxruntime", "versions": [version] if version else []}


class PredictorServer(ModelServer):  # type: ignore[misc]
    def __init__(
        self, *, payload_hook: PayloadHook | None = None, uvloop: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.dataplane = OnnxDataPlane(model_registry=self.registered_models)
        self.payload_hook = payload_hook
        self.use_uvloop = uvloop

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
        self._rest_server = rest
        self.servers.append(rest.start())
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
                InferenceService(self.dataplane, self.model_repository_extension, loop, self.payload_hook),
                threads=self.max_threads,
                options=[
                    ("grpc.so_reuseport", 0),  # a port in use is an error, never silently shared
                    ("grpc.max_send_message_length", kserve_args.grpc_max_send_message_length),
                    ("grpc.max_receive_message_length", kserve_args.grpc_max_receive_message_length),
                ],
                grace_period=self.grace_period,
            )
            grpc_server.start()
            self._grpc_server = grpc_server
        self.setup_event_loop()
        self.register_signal_handler()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()
