"""``python -m drift_detector --model_dir DIR --http_port N``; every other setting is a ``DRIFT_*``
variable, listed with default and meaning at the end of ``--help``.

A misconfiguration stops the start with one line and the exit code shared by all components
(``serving_common.operability.exits``): 2 bad or unknown flag/variable, 3 bundle unusable,
5 port in use.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic_settings import BaseSettings
from serving_common.operability import env_help
from serving_common.operability.startup import Component, Launch, run

from drift_detector.settings import Settings

if TYPE_CHECKING:
    from drift_detector.reference import Reference

log = logging.getLogger("drift_detector")

QUIET = ("uvicorn.access", "transformers", "alibi_detect")
"""The detector answers the payload logger, many times a second: no access lines; and the
libraries alibi-detect pulls in stay quiet below WARNING."""
LIBRARY_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}
"""transformers (imported by alibi-detect) installs its own stderr handler and prints advice
("None of PyTorch, TensorFlow >= 2.0, or Flax have been found") unless told by these variables."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m drift_detector",
        description=__doc__,
        epilog=env_help([Settings]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model_dir", help="model bundle directory (env DRIFT_MODEL_DIR)")
    parser.add_argument("--http_port", type=int, help="HTTP port (env DRIFT_HTTP_PORT, default 8080)")
    parser.add_argument("--host", help="address to bind (env DRIFT_HOST, default 0.0.0.0)")
    return parser.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as settings fields (a flag wins over its DRIFT_* variable)."""
    return {k: v for k, v in vars(args).items() if v is not None}


def _prepare(args: argparse.Namespace, loaded: Sequence[BaseSettings]) -> Launch[Reference]:
    (settings,) = cast(tuple[Settings, ...], tuple(loaded))

    def checks() -> None:
        for name, value in LIBRARY_ENV.items():
            os.environ.setdefault(name, value)

    def load() -> Reference:
        from drift_detector.reference import Reference

        # the bundle's files, checked now (the detector itself is built in the background)
        return Reference.load(settings.model_dir)

    def serve(reference: Reference) -> None:
        import uvicorn
        from serving_common.drain import CloseWhileDraining
        from serving_common.operability.asgi import RequestIds

        from drift_detector.app import DriftService, create_app
        from drift_detector.drain import Drain, DrainingServer

        log.info(
            "reference of %d rows from %s; serving on port %d",
            len(reference.features),
            settings.model_dir,
            settings.http_port,
            extra={"model_dir": str(settings.model_dir), "http_port": settings.http_port},
        )
        app = create_app(settings)
        drain = Drain(settings.drain_seconds, what="events")
        assert app.state is not None
        service: DriftService = app.state.service
        service.drain = drain  # /ready answers 503 while draining
        config = uvicorn.Config(
            RequestIds(CloseWhileDraining(app, drain)),  # x-request-id on every answer
            host=settings.host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.grace_seconds),
            timeout_keep_alive=5,
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
            lifespan="on",
            proxy_headers=False,  # no X-Forwarded-* rewriting: events come from the logger directly
            server_header=False,
            date_header=False,
        )
        # SIGTERM / SIGINT drain first (drain.py): /ready 503, events taken DRIFT_DRAIN_SECONDS more
        DrainingServer(config, drain).run()
        log.info("stopped")

    return Launch(
        flags={},
        ports={"--http_port": settings.http_port},
        load=load,
        serve=serve,
        model_dir=str(settings.model_dir),
        bundle_flag="--model_dir/DRIFT_MODEL_DIR",
        bundle_expected="a model bundle with feature_spec.json and reference.npy",
        checks=checks,
    )


COMPONENT = Component(
    name="drift_detector",
    prefix="DRIFT_",
    settings=(Settings,),
    parse=parse_args,
    prepare=_prepare,
    overrides=_overrides,
    quiet=QUIET,
)


def main(argv: list[str] | None = None) -> int:
    return run(COMPONENT, argv)


if __name__ == "__main__":
    sys.exit(main())
