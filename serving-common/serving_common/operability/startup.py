"""The start-up sequence of every serving component, written once.

    flags -> PREFIX_* variables checked (unknown names refused) -> settings (one line per bad value)
    -> logging (and tracing) configured -> the component's own preparation -> "effective settings"
    logged once -> the component's checks -> ports free -> bundle loaded -> serve
    any StartupError on the way: ONE line and its exit code (``exits.report``)

A component describes what is its own in a :class:`Component` (name, variable prefix, settings
classes, flag parser, and ``prepare``: from flags and settings to a :class:`Launch`), and its
``__main__`` is ``sys.exit(run(COMPONENT, argv))``. Pure (no KServe): the drift detector's
virtualenv runs it too.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import prometheus_client
from pydantic_settings import BaseSettings

from serving_common.bundle import BundleError
from serving_common.operability import tracing
from serving_common.operability.describe import effective_settings
from serving_common.operability.env import check_environment, settings_or_error
from serving_common.operability.exits import BundleUnusableError, StartupError, report
from serving_common.operability.logs import configure_logging, configured
from serving_common.operability.ports import check_ports

__all__ = ["Component", "Launch", "run"]

M = TypeVar("M")


@dataclass(frozen=True)
class Launch(Generic[M]):
    """What a component found in its flags and settings: what to print, check, load and serve."""

    flags: Mapping[str, Any]
    """Flags printed with the effective settings (``{"model_name": ..., "http_port": ...}``)."""
    ports: Mapping[str, int | None]
    """``{flag: port}`` that must be distinct and free before the bundle loads (None: not served)."""
    load: Callable[[], M]
    """Reads the bundle (the heavy work). ``BundleError``, ``OSError`` and :attr:`bundle_errors`
    become :class:`BundleUnusableError` naming :attr:`bundle_flag` and :attr:`model_dir`; a
    :class:`StartupError` it raises itself passes as it is."""
    serve: Callable[[M], None]
    """Serves the loaded model until stopped."""
    model_dir: str
    bundle_expected: str
    """What a usable bundle is, for the error line: ``"a model bundle with feature_spec.json"``."""
    bundle_flag: str = "--model_dir"
    bundle_errors: tuple[type[Exception], ...] = ()
    checks: Callable[[], None] | None = None
    """Run after the effective settings are logged, before the ports (warnings, ConfigError)."""


@dataclass(frozen=True)
class Component:
    """What is a component's own in its start."""

    name: str
    """``predictor``: its logger, its error lines, ``python -m <name> --help``."""
    prefix: str
    """Its variables' prefix, ``PREDICTOR_``."""
    settings: tuple[type[BaseSettings], ...]
    """Its settings classes; the first one has ``log_format`` and ``log_level`` (and, when it
    traces, ``otlp_endpoint`` and ``trace_sample_ratio``)."""
    parse: Callable[[list[str] | None], argparse.Namespace]
    prepare: Callable[[argparse.Namespace, Sequence[BaseSettings]], Launch[Any]]
    overrides: Callable[[argparse.Namespace], dict[str, Any]] | None = None
    """Flags that set fields of the first settings class (``{field: value}``; named ``--field``)."""
    quiet: tuple[str, ...] = field(default=())
    """Loggers held at WARNING besides the usual ones."""


def _settings(component: Component, args: argparse.Namespace) -> list[BaseSettings]:
    overrides = component.overrides(args) if component.overrides is not None else {}
    out: list[BaseSettings] = []
    for i, cls in enumerate(component.settings):
        if i == 0 and overrides:
            flags = {k: f"--{k}" for k in overrides}
            out.append(settings_or_error(cls, flags=flags, **overrides))
        else:
            out.append(settings_or_error(cls))
    return out


def _load(launch: Launch[M]) -> M:
    unusable: tuple[type[Exception], ...] = (BundleError, OSError, *launch.bundle_errors)
    try:
        return launch.load()
    except StartupError:
        raise
    except unusable as e:
        raise BundleUnusableError(
            f"{launch.bundle_flag} {launch.model_dir!r}: {e}; expected {launch.bundle_expected}"
        ) from e


def start(component: Component, argv: list[str] | None) -> int:
    """The sequence above; raises :class:`StartupError` (see :func:`run`)."""
    log = logging.getLogger(component.name)
    args = component.parse(argv)
    check_environment(component.prefix, component.settings, help_hint=f"python -m {component.name} --help")
    settings = _settings(component, args)
    main = settings[0]
    configure_logging(component.name, main.log_format, main.log_level, quiet=component.quiet)  # type: ignore[attr-defined]
    tracing.configure_tracing(
        component.name,
        getattr(main, "otlp_endpoint", None),
        sample_ratio=getattr(main, "trace_sample_ratio", 1.0),
    )
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
    try:
        launch = component.prepare(args, settings)
        log.info("effective settings", extra={"settings": effective_settings(*settings, **launch.flags)})
        if launch.checks is not None:
            launch.checks()
        check_ports(launch.ports)
        launch.serve(_load(launch))
    finally:
        tracing.shutdown_tracing()
    return 0


def run(component: Component, argv: list[str] | None = None) -> int:
    """Starts ``component`` and serves; the exit code (a start-up error: its one line first)."""
    try:
        return start(component, argv)
    except StartupError as e:
        return report(component.name, e, logged=configured())
