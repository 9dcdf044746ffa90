"""``python -m explainer --model_name NAME --predictor_host HOST:PORT --model_dir BUNDLE --http_port N
[--predictor_protocol grpc-v2|v2|v1]``.

Built on ``kserve.model_server.parser``, so the flags KServe's controller appends work. The
predictor protocol defaults to ``EXPLAINER_PREDICTOR_PROTOCOL`` (grpc-v2), not KServe's v1;
every ``EXPLAINER_*`` variable is listed with default and meaning at the end of ``--help``.
A misconfiguration stops the start with one line and the shared exit code (2 flag/variable,
3 bundle, 5 port in use; ``serving_common.operability.exits``).
"""

from __future__ import annotations

import argparse
import logging
import sys

import prometheus_client
from kserve.model_server import app
from kserve.model_server import parser as kserve_parser
from serving_common import BundleError
from serving_common.framework.front import FrontServer
from serving_common.framework.startup import check_flags, predictor_protocol, quiet_access_log
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
from serving_common.operability.asgi import RequestContext
from serving_common.operability.tracing import configure_tracing, shutdown_tracing

from explainer import metrics
from explainer.model import Explainer
from explainer.rest import ExplainRoutes
from explainer.settings import ExplainerSettings

log = logging.getLogger("explainer")


def build_parser() -> argparse.ArgumentParser:
    prog = "python -m explainer"
    parser = argparse.ArgumentParser(
        prog=prog,
        parents=[kserve_parser],
        description=__doc__,
        epilog=env_help([ExplainerSettings]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model_dir", required=True, help="model bundle directory (spec and reference sample)"
    )
    return parser


def start(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    check_environment("EXPLAINER_", [ExplainerSettings], help_hint="python -m explainer --help")
    settings = settings_or_error(ExplainerSettings)
    configure_logging("explainer", settings.log_format, settings.log_level)
    configure_tracing("explainer", settings.otlp_endpoint, sample_ratio=settings.trace_sample_ratio)
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
    protocol = predictor_protocol(argv, settings.predictor_protocol)
    grpc_port = args.grpc_port if args.enable_grpc else None
    log.info(
        "effective settings",
        extra={
            "settings": effective_settings(
                settings,
                model_name=args.model_name,
                model_dir=args.model_dir,
                predictor_host=args.predictor_host,
                predictor_protocol=protocol,
                http_port=args.http_port,
                grpc_port=grpc_port,
            )
        },
    )
    check_flags(args, log)
    check_ports({"--http_port": args.http_port, "--grpc_port": grpc_port})
    model = Explainer(
        args.model_name,
        model_dir=args.model_dir,
        predictor_host=args.predictor_host,
        predictor_protocol=protocol,
        settings=settings,
        predictor_use_ssl=args.predictor_use_ssl,
    )
    try:
        model.load()
    except (BundleError, OSError, ValueError) as e:
        raise BundleUnusableError(
            f"--model_dir {args.model_dir!r}: {e}; expected a model bundle with feature_spec.json "
            "and reference.npy"
        ) from e
    log.info(
        "serving %s on http port %s, predictor %s over %s",
        model.name,
        args.http_port,
        args.predictor_host,
        protocol,
        extra={"http_port": args.http_port, "grpc_port": grpc_port, "predictor_host": args.predictor_host},
    )
    server = FrontServer(  # the gate (routes, limits, shedding, drain) before KServe's app
        routes=None,
        settings=settings,
        component="explainer",
        prefix="EXPLAINER_",
        on_refused=lambda reason: metrics.HTTP_REFUSED.labels(reason).inc(),
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_grpc=args.enable_grpc,
    )
    ExplainRoutes(server.registered_models).install(app)
    app.add_middleware(RequestContext)  # request/trace id on its lines, span, x-request-id on answers
    quiet_access_log(True)  # one access line per explain request (KServe's trace lines off)
    try:
        server.start([model])
    finally:
        shutdown_tracing()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return start(sys.argv[1:] if argv is None else argv)
    except StartupError as e:
        return report("explainer", e, logged=configured())


if __name__ == "__main__":
    sys.exit(main())
