"""``python -m explainer --model_name NAME --predictor_host HOST:PORT --model_dir BUNDLE --http_port N
[--predictor_protocol grpc-v2|v2|v1]``.

Built on ``kserve.model_server.parser``, so the flags KServe's controller appends work. The
predictor protocol defaults to ``EXPLAINER_PREDICTOR_PROTOCOL`` (grpc-v2), not KServe's v1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kserve.model_server import app
from kserve.model_server import parser as kserve_parser
from serving_common import BundleError
from serving_common.framework.front import FrontServer
from serving_common.framework.startup import check_flags, configure_logging, explicit_protocol

from explainer import metrics
from explainer.model import Explainer
from explainer.rest import ExplainRoutes
from explainer.settings import ExplainerSettings

log = logging.getLogger("explainer")


def build_parser() -> argparse.ArgumentParser:
    prog = "python -m explainer"
    parser = argparse.ArgumentParser(prog=prog, parents=[kserve_parser], description=__doc__)
    parser.add_argument(
        "--model_dir", required=True, help="model bundle directory (spec and reference sample)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    configure_logging(args)
    settings = ExplainerSettings()
    if not check_flags(args, log):
        return 2
    model = Explainer(
        args.model_name,
        model_dir=args.model_dir,
        predictor_host=args.predictor_host,
        predictor_protocol=explicit_protocol(argv) or settings.predictor_protocol,
        settings=settings,
        predictor_use_ssl=args.predictor_use_ssl,
    )
    try:
        model.load()
    except (BundleError, ValueError) as e:
        log.error("cannot load the bundle: %s", e)
        return 1
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
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
