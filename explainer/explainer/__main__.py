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
from collections.abc import Sequence
from typing import cast

from kserve.model_server import app
from kserve.model_server import parser as kserve_parser
from pydantic_settings import BaseSettings
from serving_common.framework.front import FrontServer
from serving_common.framework.startup import check_flags, predictor_protocol, quiet_access_log
from serving_common.operability import env_help
from serving_common.operability.asgi import RequestContext
from serving_common.operability.startup import Component, Launch, run

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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # --predictor_protocol: the flag when given, else the setting
    return args


def _prepare(args: argparse.Namespace, loaded: Sequence[BaseSettings]) -> Launch[Explainer]:
    (settings,) = cast(tuple[ExplainerSettings], tuple(loaded))
    protocol = predictor_protocol(args.argv, settings.predictor_protocol)
    grpc_port = args.grpc_port if args.enable_grpc else None

    def load() -> Explainer:
        model = Explainer(
            args.model_name,
            model_dir=args.model_dir,
            predictor_host=args.predictor_host,
            predictor_protocol=protocol,
            settings=settings,
            predictor_use_ssl=args.predictor_use_ssl,
        )
        model.load()
        return model

    def serve(model: Explainer) -> None:
        host = args.predictor_host
        log.info(
            "serving %s on http port %s, predictor %s over %s",
            model.name,
            args.http_port,
            host,
            protocol,
            extra={"http_port": args.http_port, "grpc_port": grpc_port, "predictor_host": host},
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
        server.start([model])

    return Launch(
        flags={
            "model_name": args.model_name,
            "model_dir": args.model_dir,
            "predictor_host": args.predictor_host,
            "predictor_protocol": protocol,
            "http_port": args.http_port,
            "grpc_port": grpc_port,
        },
        ports={"--http_port": args.http_port, "--grpc_port": grpc_port},
        load=load,
        serve=serve,
        model_dir=args.model_dir,
        bundle_expected="a model bundle with feature_spec.json and reference.npy",
        bundle_errors=(ValueError,),
        checks=lambda: check_flags(args, log),
    )


COMPONENT = Component(
    name="explainer", prefix="EXPLAINER_", settings=(ExplainerSettings,), parse=parse_args, prepare=_prepare
)


def main(argv: list[str] | None = None) -> int:
    return run(COMPONENT, argv)


if __name__ == "__main__":
    sys.exit(main())
