"""The start of ``python -m transformer`` and ``python -m explainer``, on top of
``kserve.model_server.parser``: which predictor protocol was asked for, the flags these
components require or ignore, and the request lines they keep quiet. Misconfigurations raise
:class:`serving_common.operability.ConfigError` (one line, exit 2) for ``__main__`` to report.

Imports KServe, so only the KServe-based components import it (``serving_common``'s ``__init__``
does not).
"""

from __future__ import annotations

import argparse
import logging

from serving_common.framework.predictor_client import PROTOCOLS
from serving_common.operability import ConfigError

__all__ = ["check_flags", "explicit_protocol", "predictor_protocol", "quiet_access_log"]


def explicit_protocol(argv: list[str]) -> str | None:
    """``--predictor_protocol`` (or the deprecated ``--protocol``) when given on the command line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--predictor_protocol", default=None)
    pre.add_argument("--protocol", default=None)
    given, _ = pre.parse_known_args(argv)
    value: str | None = given.predictor_protocol or given.protocol
    return value


def predictor_protocol(argv: list[str], default: str) -> str:
    """The flag's protocol (checked: ConfigError naming it) or the setting's ``default``."""
    given = explicit_protocol(argv)
    if given is not None and given not in PROTOCOLS:
        raise ConfigError(f"--predictor_protocol {given!r}: expected one of {', '.join(PROTOCOLS)}")
    return given or default


def check_flags(args: argparse.Namespace, log: logging.Logger) -> None:
    """Warns that ``--workers`` is ignored; ConfigError without ``--predictor_host``."""
    if args.workers != 1:
        log.warning("--workers %d ignored: one worker per process (scale with replicas)", args.workers)
    host, _, port = str(args.predictor_host or "").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--predictor_host {args.predictor_host!r}: expected HOST:PORT of the predictor")


def quiet_access_log(access_log: bool = False) -> None:
    """At most one line per request: uvicorn's access line (with the request id) when asked,
    never KServe's trace lines nor its gRPC interceptor's "grpc method: ..." lines (call after
    the ModelServer is made)."""
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if access_log else logging.WARNING)
    logging.getLogger("kserve").addFilter(_drop_per_call_grpc_lines)


def _drop_per_call_grpc_lines(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith("grpc method:"))
