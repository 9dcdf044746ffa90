"""``python -m predictor``: serve a model bundle with KServe's ModelServer and onnxruntime.

Flags are KServe's (``kserve.model_server.parser``: ``--model_name``, ``--http_port``,
``--grpc_port``, ``--workers``, ...) plus ``--model_dir`` and the payload-logger flags;
everything else is ``PREDICTOR_*`` (see settings.py).
"""

from __future__ import annotations

import argparse
import logging
import sys

from kserve import model_server as kserve_model_server
from serving_common import BundleError, IntegrityError
from serving_common.logger_config import add_logger_arguments

from predictor.model import OnnxModel
from predictor.payload_hook import payload_hook
from predictor.server import PredictorServer
from predictor.settings import PredictorLoggerSettings, PredictorSettings

log = logging.getLogger("predictor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m predictor", parents=[kserve_model_server.parser], description=__doc__
    )
    parser.add_argument("--model_dir", default="/mnt/models", help="model bundle directory or .onnx file")
    add_logger_arguments(parser)
    args, _ = parser.parse_known_args(argv)
    return args


def _drop_per_call_grpc_lines(record: logging.LogRecord) -> bool:
    """KServe's gRPC interceptor logs every call at INFO ("grpc method: ..."): the access log we turn off."""
    return not (isinstance(record.msg, str) and record.msg.startswith("grpc method:"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = PredictorSettings()
    # The inference thread hands each result back to the event loop; with CPython's default 5 ms
    # GIL switch interval that hand-off waits on gRPC's poller thread (measured: 2x gRPC latency).
    sys.setswitchinterval(settings.gil_switch_interval_us / 1e6)
    model = OnnxModel(args.model_name, args.model_dir, settings)
    try:
        model.load()
    except IntegrityError as e:
        log.error("refusing to become ready: %s", e)
        return 3
    except BundleError as e:
        log.error("cannot load the model: %s", e)
        return 2
    hook = payload_hook(args, PredictorLoggerSettings(), model.name, kserve_model_server.app)
    server = PredictorServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=args.enable_grpc,
        settings=settings,
        payload_hook=hook,
        uvloop=args.event_loop != "asyncio",
    )
    if not settings.access_log:  # after ModelServer, which configures logging
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("kserve").addFilter(_drop_per_call_grpc_lines)
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
