"""``python -m transformer --model_name NAME --predictor_host HOST:PORT [--predictor_protocol grpc-v2|v2|v1]
--model_dir BUNDLE [--http_port N --grpc_port M] [--logger_url URL]``.

Built on ``kserve.model_server.parser``, so every flag KServe's controller appends works. The
predictor protocol defaults to ``TRANSFORMER_PREDICTOR_PROTOCOL`` (grpc-v2), not KServe's v1;
every ``TRANSFORMER_*`` variable is listed with default and meaning at the end of ``--help``.
A misconfiguration stops the start with one line and the shared exit code (2 flag/variable,
3 bundle, 5 port in use; ``serving_common.operability.exits``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import cast

from kserve.model_server import parser as kserve_parser
from kserve.predictor_config import PredictorConfig
from pydantic_settings import BaseSettings
from serving_common.framework.front import FrontServer
from serving_common.framework.startup import check_flags, predictor_protocol, quiet_access_log
from serving_common.logger_config import add_logger_arguments, build_payload_logger
from serving_common.operability import env_help
from serving_common.operability.startup import Component, Launch, run

from transformer import metrics
from transformer.model import Transformer
from transformer.routes import InferenceRoutes
from transformer.settings import TransformerLoggerSettings, TransformerSettings

log = logging.getLogger("transformer")

SETTINGS = (TransformerSettings, TransformerLoggerSettings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transformer",
        parents=[kserve_parser],
        description=__doc__,
        epilog=env_help(SETTINGS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model_dir", required=True, help="model bundle directory (its feature spec is used)"
    )
    add_logger_arguments(parser)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # --predictor_protocol: the flag when given, else the setting
    return args


def _prepare(args: argparse.Namespace, loaded: Sequence[BaseSettings]) -> Launch[Transformer]:
    settings, logger_settings = cast(tuple[TransformerSettings, TransformerLoggerSettings], tuple(loaded))
    protocol = predictor_protocol(args.argv, settings.predictor_protocol)
    grpc_port = args.grpc_port if args.enable_grpc else None

    def load() -> Transformer:
        model = Transformer(
            args.model_name,
            model_dir=args.model_dir,
            predictor_host=args.predictor_host,
            predictor_protocol=protocol,
            settings=settings,
            predictor_use_ssl=args.predictor_use_ssl,
            payload_logger=build_payload_logger(args, logger_settings, component="transformer"),
        )
        model.load()
        return model

    def serve(model: Transformer) -> None:
        log.info(
            "serving %s on http port %s%s, predictor %s over %s",
            model.name,
            args.http_port,
            f", grpc port {grpc_port}" if grpc_port is not None else " (gRPC off)",
            args.predictor_host,
            protocol,
            extra={
                "http_port": args.http_port,
                "grpc_port": grpc_port,
                "predictor_host": args.predictor_host,
            },
        )
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
        quiet_access_log(settings.access_log)
        server.start([model])

    return Launch(
        flags={
            "model_name": args.model_name,
            "model_dir": args.model_dir,
            "predictor_host": args.predictor_host,
            "predictor_protocol": protocol,
            "http_port": args.http_port,
            "grpc_port": grpc_port,
            "logger_url": args.logger_url,
        },
        ports={"--http_port": args.http_port, "--grpc_port": grpc_port},
        load=load,
        serve=serve,
        model_dir=args.model_dir,
        bundle_expected="a model bundle with feature_spec.json",
        checks=lambda: check_flags(args, log),
    )


COMPONENT = Component(
    name="transformer", prefix="TRANSFORMER_", settings=SETTINGS, parse=parse_args, prepare=_prepare
)


def main(argv: list[str] | None = None) -> int:
    return run(COMPONENT, argv)


if __name__ == "__main__":
    sys.exit(main())
