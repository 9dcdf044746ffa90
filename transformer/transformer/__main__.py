"""``python -m transformer --model_name NAME --predictor_host HOST:PORT [--predictor_protocol grpc-v2|v2|v1]
--model_dir BUNDLE [--http_port N --grpc_port M] [--logger_url URL]``.

Built on ``kserve.model_server.parser``, so every flag KServe's controller appends works. The
predictor protocol defaults to ``TRANSFORMER_PREDICTOR_PROTOCOL`` (grpc-v2), not KServe's v1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kserve.model_server import parser as kserve_parser
from kserve.predictor_config import PredictorConfig
from serving_common import BundleError
from serving_common.framework.front import FrontServer
from serving_common.framework.startup import (
    check_flags,
    configure_logging,
    explicit_protocol,
    quiet_access_log,
)
from serving_common.logger_config import add_logger_arguments, build_payload_logger, logger_settings

from transformer import metrics
from transformer.model import Transformer
from transformer.routes import InferenceRoutes
from transformer.settings import TransformerSettings

log = logging.getLogger("transformer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transformer", parents=[kserve_parser], description=__doc__
    )
    parser.add_argument(
        "--model_dir", required=True, help="model bundle directory (its feature spec is used)"
    )
    add_logger_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    configure_logging(args)
    settings = TransformerSettings()
    protocol = explicit_protocol(argv) or settings.predictor_protocol
    if not check_flags(args, log):
        return 2
    model = Transformer(
        args.model_name,
        model_dir=args.model_dir,
        predictor_host=args.predictor_host,
        predictor_protocol=protocol,
        settings=settings,
        predictor_use_ssl=args.predictor_use_ssl,
        payload_logger=build_payload_logger(args, logger_settings("TRANSFORMER"), component="transformer"),
    )
    try:
        model.load()
    except BundleError as e:
        log.error("cannot load the bundle: %s", e)
        return 1
    server = FrontServer(
        routes=lambda registry: InferenceRoutes(registry).route,
        settings=settings,
        component="transformer",
        prefix="TRANSFORMER_",
        on_refused=lambda reason: metrics.HTTP_REFUSED.labels(reason).inc(),
        access_log=settings.access_log,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,  # the routes and the model live in this process; scale with replicas
        enable_grpc=args.enable_grpc,
        predictor_config=PredictorConfig(
            predictor_host=args.predictor_host,
            predictor_protocol=protocol,
            predictor_use_ssl=args.predictor_use_ssl,
            predictor_request_timeout_seconds=int(max(1, settings.predictor_timeout)),
            predictor_health_check=args.enable_predictor_health_check,
        ),
    )
    if not settings.access_log:
        quiet_access_log()
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
