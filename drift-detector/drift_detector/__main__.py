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

import prometheus_client
from serving_common import BundleError
from serving_common.operability import (
    BundleUnusableError,
    StartupError,
    check_environment,
    check_ports,
    configure_logging,
    configured,
    effective_settings,
    env_help,
    report,
    settings_or_error,
)

from drift_detector.settings import Settings

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


def start(argv: list[str] | None) -> int:
    args = parse_args(argv)
    check_environment("DRIFT_", [Settings], help_hint="python -m drift_detector --help")
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = settings_or_error(Settings, flags={k: f"--{k}" for k in overrides}, **overrides)
    configure_logging("drift_detector", settings.log_format, settings.log_level, quiet=QUIET)
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
    log.info("effective settings", extra={"settings": effective_settings(settings)})
    for name, value in LIBRARY_ENV.items():
        os.environ.setdefault(name, value)
    check_ports({"--http_port": settings.http_port})

    import uvicorn
    from serving_common.drain import CloseWhileDraining

    from drift_detector.app import DriftService, create_app
    from drift_detector.drain import Drain, DrainingServer
    from drift_detector.reference import Reference

    try:  # the bundle's files, checked now (the detector itself is built in the background)
        reference = Reference.load(settings.model_dir)
    except (BundleError, OSError) as e:
        raise BundleUnusableError(
            f"--model_dir/DRIFT_MODEL_DIR {str(settings.model_dir)!r}: {e}; expected a model bundle "
            "with feature_spec.json and reference.npy"
        ) from e
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
        CloseWhileDraining(app, drain),
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
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return start(argv)
    except StartupError as e:
        return report("drift_detector", e, logged=configured())


if __name__ == "__main__":
    sys.exit(main())
