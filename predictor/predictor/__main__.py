"""``python -m predictor``: serve a model bundle with KServe's ModelServer and onnxruntime.

Flags are KServe's (``--model_name``, ``--http_port``, ``--grpc_port``, ``--workers``, ...) plus
``--model_dir`` and the payload-logger flags; everything else is a ``PREDICTOR_*`` variable,
listed with default and meaning at the end of ``--help``. A misconfiguration stops the start with
one line and the exit code shared by all components (``serving_common.operability.exits``):
2 bad or unknown flag/variable, 3 bundle unusable, 4 sha256 mismatch, 5 port in use.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from pydantic_settings import BaseSettings
from serving_common.logger_config import add_logger_arguments
from serving_common.operability import BundleUnusableError, IntegrityFailedError, env_help
from serving_common.operability.startup import Component, Launch, run

from predictor.settings import PredictorLoggerSettings, PredictorSettings

if TYPE_CHECKING:
    from predictor.model import OnnxModel

log = logging.getLogger("predictor")

SETTINGS = (PredictorSettings, PredictorLoggerSettings)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from kserve import model_server as kserve_model_server

    parser = argparse.ArgumentParser(
        prog="python -m predictor",
        parents=[kserve_model_server.parser],
        description=__doc__,
        epilog=env_help(SETTINGS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model_dir", default="/mnt/models", help="model bundle directory or .onnx file")
    add_logger_arguments(parser)
    args, unknown = parser.parse_known_args(argv)
    args.unknown_flags = unknown  # KServe may append flags this version does not know: logged, not fatal
    return args


def _load(model_dir: str, model: object) -> None:
    """``model.load()`` with library failures translated into start-up errors naming ``--model_dir``."""
    from serving_common import BundleError, IntegrityError

    try:
        model.load()  # type: ignore[attr-defined]
    except IntegrityError as e:
        raise IntegrityFailedError(
            f"--model_dir {model_dir!r}: {e}; expected model.onnx to match the model card's sha256 "
            "(rebuild the bundle, or PREDICTOR_VERIFY_SHA256=false to serve it anyway)"
        ) from e
    except BundleError as e:
        raise BundleUnusableError(
            f"--model_dir {model_dir!r}: {e}; expected a bundle directory with model.onnx, or an .onnx file"
        ) from e
    except OSError as e:
        raise BundleUnusableError(
            f"--model_dir {model_dir!r}: cannot read {e.filename or 'the model'} ({e.strerror}); "
            "expected a readable model file"
        ) from e
    except Exception as e:
        if type(e).__module__.startswith("onnxruntime"):  # Fail, InvalidProtobuf, NoSuchFile, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BundleUnusableError(
                f"--model_dir {model_dir!r}: onnxruntime cannot load the model ({first}); "
                "expected a readable ONNX model"
            ) from e
        raise


def _prepare(args: argparse.Namespace, loaded: Sequence[BaseSettings]) -> Launch[OnnxModel]:
    settings, logger_settings = cast(tuple[PredictorSettings, PredictorLoggerSettings], tuple(loaded))
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # onnxruntime's C++ warnings about graph rewrites: errors only
    grpc_port = args.grpc_port if args.enable_grpc else None

    def checks() -> None:
        if args.unknown_flags:
            log.warning("ignoring unknown flags %s", " ".join(args.unknown_flags))

    def load() -> OnnxModel:
        from predictor.model import OnnxModel

        # The inference thread hands each result back to the event loop; with CPython's default 5 ms
        # GIL switch interval that hand-off waits on gRPC's poller thread (measured: 2x gRPC latency).
        sys.setswitchinterval(settings.gil_switch_interval_us / 1e6)
        model = OnnxModel(args.model_name, args.model_dir, settings)
        log.info(
            "loading model %s from %s (sha256 check %s)",
            args.model_name,
            args.model_dir,
            "on" if settings.verify_sha256 else "off",
        )
        started = time.perf_counter()
        _load(args.model_dir, model)
        bundle = model.bundle
        log.info(
            "model %s ready: version %s, sha256 %s, loaded in %.2f s",
            model.name,
            model.version,
            bundle.expected_sha256() if bundle is not None else None,
            time.perf_counter() - started,
            extra={
                "model_name": model.name,
                "model_version": model.version,
                "model_path": str(bundle.model_path) if bundle is not None else None,
                "sha256": bundle.expected_sha256() if bundle is not None else None,
                "sha256_verified": settings.verify_sha256
                and bundle is not None
                and bundle.expected_sha256() is not None,
            },
        )
        return model

    def serve(model: OnnxModel) -> None:
        from kserve import model_server as kserve_model_server
        from serving_common.framework.startup import quiet_access_log

        from predictor.payload_hook import payload_hook
        from predictor.server import PredictorServer

        hook = payload_hook(args, logger_settings, model.name, kserve_model_server.app)
        server = PredictorServer(
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            workers=args.workers,
            enable_grpc=args.enable_grpc,
            settings=settings,
            payload_hook=hook,
            uvloop=args.event_loop != "asyncio",
        )
        quiet_access_log(settings.access_log)  # at most one line per request
        log.info(
            "serving %s on http port %s%s",
            model.name,
            args.http_port,
            f", grpc port {grpc_port}" if grpc_port is not None else " (gRPC off)",
            extra={"http_port": args.http_port, "grpc_port": grpc_port},
        )
        server.start([model])

    return Launch(
        flags={
            "model_name": args.model_name,
            "model_dir": args.model_dir,
            "http_port": args.http_port,
            "grpc_port": grpc_port,
            "logger_url": args.logger_url,
        },
        ports={"--http_port": args.http_port, "--grpc_port": grpc_port},
        load=load,
        serve=serve,
        model_dir=args.model_dir,
        bundle_expected="a bundle directory with model.onnx, or an .onnx file",
        checks=checks,
    )


COMPONENT = Component(
    name="predictor", prefix="PREDICTOR_", settings=SETTINGS, parse=parse_args, prepare=_prepare
)


def main(argv: list[str] | None = None) -> int:
    # KServe parses sys.argv when imported (below, lazily) and names errors after argv[0]
    # ("__main__.py: error: ..."): name the command the user typed instead.
    sys.argv[0] = "python -m predictor"
    return run(COMPONENT, argv)


if __name__ == "__main__":
    sys.exit(main())
