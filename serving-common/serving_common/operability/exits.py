"""Exit codes shared by every serving component, and the start-up errors that carry them.

    StartupError                 (1)  anything else that stops a start
    ├── ConfigError              (2)  a bad or unknown flag or PREFIX_* variable (argparse also exits 2)
    ├── BundleUnusableError      (3)  model bundle missing, unreadable, or not a model
    ├── IntegrityFailedError     (4)  model.onnx does not match the model card's sha256
    ├── PortInUseError           (5)  --http_port / --grpc_port already taken (never shared)
    └── UpstreamUnavailableError (6)  a required upstream is unreachable at start

An uncaught exception exits 1 with its traceback (a bug, not a misconfiguration). Each error is
reported as ONE line (:func:`report`): what (the flag or variable and its value) and what is
expected. On Kubernetes the line is also the container's termination message.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

__all__ = [
    "EXIT_BUNDLE",
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "EXIT_PORT_IN_USE",
    "EXIT_UPSTREAM",
    "BundleUnusableError",
    "ConfigError",
    "IntegrityFailedError",
    "PortInUseError",
    "StartupError",
    "UpstreamUnavailableError",
    "report",
]

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_CONFIG = 2
EXIT_BUNDLE = 3
EXIT_INTEGRITY = 4
EXIT_PORT_IN_USE = 5
EXIT_UPSTREAM = 6

TERMINATION_LOG = Path("/dev/termination-log")
"""Kubernetes' default ``terminationMessagePath``: written when it exists (in a pod)."""


class StartupError(Exception):
    """A start that cannot go on; ``exit_code`` is what the process exits with."""

    exit_code = EXIT_CRASH


class ConfigError(StartupError):
    exit_code = EXIT_CONFIG


class BundleUnusableError(StartupError):
    exit_code = EXIT_BUNDLE


class IntegrityFailedError(StartupError):
    exit_code = EXIT_INTEGRITY


class PortInUseError(StartupError):
    exit_code = EXIT_PORT_IN_USE


class UpstreamUnavailableError(StartupError):
    exit_code = EXIT_UPSTREAM


def report(component: str, error: StartupError, *, logged: bool = False) -> int:
    """Reports ``error`` as one line and returns its exit code.

    ``logged``: logging is configured (JSON or text), so the line goes through it (level ERROR,
    with ``exit_code``); before that it is written to stderr as ``<component>: error: ...``.
    """
    message = " ".join(str(error).split())  # one line, whatever the message held
    if logged:
        logging.getLogger(component).error(
            "%s (exit %d)", message, error.exit_code, extra={"exit_code": error.exit_code}
        )
    else:
        print(f"{component}: error: {message} (exit {error.exit_code})", file=sys.stderr, flush=True)
    if TERMINATION_LOG.exists():
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(f"{message} (exit {error.exit_code})\n")
    return error.exit_code
