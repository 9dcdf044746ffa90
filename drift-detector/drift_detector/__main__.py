"""``python -m drift_detector --model_dir DIR --http_port N`` (other settings: ``DRIFT_*``)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys

import uvicorn
from pydantic import ValidationError
from serving_common.drain import CloseWhileDraining

from drift_detector.app import DriftService, create_app
from drift_detector.drain import Drain, DrainingServer
from drift_detector.logs import configure
from drift_detector.settings import Settings

log = logging.getLogger("drift_detector")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drift_detector", description=__doc__)
    parser.add_argument("--model_dir", help="model bundle directory (env DRIFT_MODEL_DIR)")
    parser.add_argument("--http_port", type=int, help="HTTP port (env DRIFT_HTTP_PORT, default 8080)")
    parser.add_argument("--host", help="address to bind (env DRIFT_HOST, default 0.0.0.0)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        print(f"invalid drift detector settings:\n{e}", file=sys.stderr)
        return 2
    configure(settings.log_format, settings.log_level)
    app = create_app(settings)
    drain = Drain(settings.drain_seconds, what="events")
    assert app.state is not None
    service: DriftService = app.state.service
    service.drain = drain  # /ready answers 503 while draining
    config = uvicorn.Config(
        CloseWhileDraining(app, drain),
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
