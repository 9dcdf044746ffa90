"""The start of ``python -m transformer`` and ``python -m explainer``, on top of
``kserve.model_server.parser``: which predictor protocol was asked for, logging, and the flags
these components require or ignore.

Imports KServe, so only the KServe-based components import it (``serving_common``'s ``__init__``
does not).
"""

from __future__ import annotations

import argparse
import logging

from kserve import logging as kserve_logging

__all__ = ["check_flags", "configure_logging", "explicit_protocol", "quiet_access_log"]


def explicit_protocol(argv: list[str]) -> str | None:
    """``--predictor_protocol`` (or the deprecated ``--protocol``) when given on the command line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--predictor_protocol", default=None)
    pre.add_argument("--protocol", default=None)
    given, _ = pre.parse_known_args(argv)
    value: str | None = given.predictor_protocol or given.protocol
    return value


def configure_logging(args: argparse.Namespace) -> None:
    """KServe's logging (``--log_config_file``), then plain lines for everything else."""
    kserve_logging.configure_logging(args.log_config_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def check_flags(args: argparse.Namespace, log: logging.Logger) -> bool:
    """Warns that ``--workers`` is ignored; False (logged) without ``--predictor_host``."""
    if args.workers != 1:
        log.warning("--workers %d ignored: one worker per process (scale with replicas)", args.workers)
    if not args.predictor_host:
        log.error("--predictor_host HOST:PORT is required")
        return False
    return True


def quiet_access_log() -> None:
    """No log line per request: uvicorn's access log, KServe's trace lines and KServe's gRPC
    interceptor's "grpc method: ..." lines (call after the ModelServer is made: it configures logging)."""
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("kserve").addFilter(_drop_per_call_grpc_lines)


def _drop_per_call_grpc_lines(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith("grpc method:"))
