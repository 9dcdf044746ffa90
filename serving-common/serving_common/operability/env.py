"""``PREFIX_*`` variables: unknown names refused (with a did-you-mean), bad values reported as one
line naming the variable (or flag), the value and what was expected.

This module and the components' settings classes are the only readers of ``os.environ``.
Kubernetes' service links (``<SERVICE>_SERVICE_HOST``, ``<SERVICE>_PORT_8080_TCP_ADDR``, ...) can
share a prefix with ours; they are recognised and left alone.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from serving_common.operability.exits import ConfigError

__all__ = ["check_environment", "env_name", "settings_or_error", "variables_of"]

S = TypeVar("S", bound=BaseSettings)

_LINK_FORMS = (  # Kubernetes service links: (name suffix, value) of <SERVICE>_...
    (re.compile(r"(\w+_)?SERVICE_HOST"), re.compile(r"[0-9a-fA-F.:]+")),
    (re.compile(r"(\w+_)?SERVICE_PORT(_\w+)?"), re.compile(r"\d+")),
    (re.compile(r"(\w+_)?PORT(_\d+_(TCP|UDP|SCTP))?"), re.compile(r"(tcp|udp|sctp)://\S+")),
    (re.compile(r"(\w+_)?PORT_\d+_(TCP|UDP|SCTP)_PROTO"), re.compile(r"tcp|udp|sctp")),
    (re.compile(r"(\w+_)?PORT_\d+_(TCP|UDP|SCTP)_PORT"), re.compile(r"\d+")),
    (re.compile(r"(\w+_)?PORT_\d+_(TCP|UDP|SCTP)_ADDR"), re.compile(r"[0-9a-fA-F.:]+")),
)
_SECRET = re.compile(r"(token|secret|password|passwd|credential|api_?key|authorization)", re.IGNORECASE)


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The variable that sets ``field`` of ``cls``: its ``env_prefix`` + the name, upper case, or the
    field's own alias (``validation_alias``, the first of ``AliasChoices``) when it has one."""
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def variables_of(classes: Iterable[type[BaseSettings]]) -> dict[str, tuple[type[BaseSettings], str]]:
    """Every variable the settings classes read: name -> (class, field)."""
    return {env_name(cls, field): (cls, field) for cls in classes for field in cls.model_fields}


def _service_link(rest: str, value: str) -> bool:
    """``rest`` (the name after the prefix) and ``value`` look like a Kubernetes service link."""
    return any(name.fullmatch(rest) and shape.fullmatch(value) for name, shape in _LINK_FORMS)


def is_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def check_environment(
    prefix: str,
    classes: Iterable[type[BaseSettings]],
    *,
    allowed: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    help_hint: str = "",
) -> None:
    """Raises :class:`ConfigError` for a ``prefix*`` variable no settings class reads.

    ``allowed``: other names with the prefix that are read elsewhere on purpose.
    """
    env = os.environ if environ is None else environ
    known = sorted({*variables_of(classes), *(a.upper() for a in allowed)})
    unknown = [
        name
        for name in sorted(env)
        if name.upper().startswith(prefix)
        and name.upper() not in known
        and not _service_link(name.upper()[len(prefix) :], env[name])
    ]
    if not unknown:
        return
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.75)
        problems.append(f"unknown variable {name}" + (f" (did you mean {close[0]}?)" if close else ""))
    hint = f"; the {prefix}* variables are listed by {help_hint}" if help_hint else ""
    raise ConfigError("; ".join(problems) + hint)


def _shown(name: str, value: Any) -> str:
    if is_secret(name):
        return "'***'"
    return repr(value[:200]) if isinstance(value, str) else repr(value)


def settings_or_error(cls: type[S], *, flags: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """``cls(**overrides)``, or :class:`ConfigError` naming each bad variable or flag and its value.

    ``flags``: field -> the command-line flag that set it (named instead of the variable).
    """
    try:
        return cls(**overrides)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = err.get("loc") or ()
            field = str(loc[0]) if loc else ""
            source = (flags or {}).get(field) or (env_name(cls, field) if field else cls.__name__)
            msg = err["msg"].removeprefix("Value error, ")
            expected = msg[0].lower() + msg[1:] if msg else err["type"]
            if field and err["type"] != "missing":
                sep = " " if source.startswith("--") else "="
                problems.append(f"{source}{sep}{_shown(source, err.get('input'))}: {expected}")
            elif field:
                problems.append(f"{source}: {expected}")
            else:  # a model validator: its message names the variables
                problems.append(msg)
        raise ConfigError("; ".join(problems)) from e
