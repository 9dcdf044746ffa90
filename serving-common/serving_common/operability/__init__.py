"""What every component's start needs, in one pure package (no KServe, no gRPC: imports in
``.venv-drift`` too): exit codes and start-up errors, ``PREFIX_*`` variable checking, settings
printing and ``--help`` text, port checks, and the one log format.

    exits.py      exit codes shared by all components; StartupError and its one-line report
    env.py        unknown PREFIX_* variables (did-you-mean), ValidationError -> one line naming the variable
    describe.py   effective settings (secrets redacted) and the env-var list for ``--help``
    ports.py      a port already in use is an error before serving (never shared)
    logs.py       JSON (python-json-logger) or text lines, request/trace id on each, library noise off
    startup.py    the one start-up sequence every ``__main__`` runs (``run(Component(...), argv)``)
    asgi.py       request ids (``RequestIds``: x-request-id on every answer) and request context
"""

from serving_common.operability.describe import effective_settings, env_help
from serving_common.operability.env import check_environment, settings_or_error
from serving_common.operability.exits import (
    EXIT_BUNDLE,
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_PORT_IN_USE,
    EXIT_UPSTREAM,
    BundleUnusableError,
    ConfigError,
    IntegrityFailedError,
    PortInUseError,
    StartupError,
    UpstreamUnavailableError,
    report,
)
from serving_common.operability.logs import REQUEST_ID, TRACE_ID, configure_logging, configured
from serving_common.operability.ports import check_ports

__all__ = [
    "EXIT_BUNDLE",
    "EXIT_CONFIG",
    "EXIT_CRASH",
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "EXIT_PORT_IN_USE",
    "EXIT_UPSTREAM",
    "REQUEST_ID",
    "TRACE_ID",
    "BundleUnusableError",
    "ConfigError",
    "IntegrityFailedError",
    "PortInUseError",
    "StartupError",
    "UpstreamUnavailableError",
    "check_environment",
    "check_ports",
    "configure_logging",
    "configured",
    "effective_settings",
    "env_help",
    "report",
    "settings_or_error",
]
