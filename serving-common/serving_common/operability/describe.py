"""Settings as an on-call engineer wants them: the effective values once at start (secrets
redacted), and the list of variables with default and meaning for ``--help``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import textwrap
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from serving_common.operability.env import env_name, is_secret

__all__ = ["effective_settings", "env_help", "field_docs"]


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field (``x: int = 1`` then ``\"\"\"meaning\"\"\"``), over the MRO."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, BaseSettings) or not issubclass(klass, BaseSettings):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _redact(name: str, value: Any) -> Any:
    if isinstance(value, SecretStr) or (is_secret(name) and value not in (None, "", [])):
        return "***"
    if isinstance(value, str) and "://" in value and "@" in value:
        parts = urlsplit(value)
        if parts.password:
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_redact(name, v) for v in value]
    return str(value)


def effective_settings(*settings: BaseSettings, **flags: Any) -> dict[str, Any]:
    """``{VARIABLE: value}`` of every settings object, then ``{--flag: value}``; secrets ``***``."""
    out: dict[str, Any] = {}
    for s in settings:
        for field in type(s).model_fields:
            name = env_name(type(s), field)
            out[name] = _redact(name, getattr(s, field))
    for flag, value in flags.items():
        out[f"--{flag}"] = _redact(flag, value)
    return out


def env_help(classes: Iterable[type[BaseSettings]]) -> str:
    """An ``--help`` epilog: every variable with its default and meaning."""
    lines = ["environment variables (default in brackets):"]
    for cls in classes:
        docs = field_docs(cls)
        for field, info in cls.model_fields.items():
            if info.default is not PydanticUndefined:
                default = info.default
            elif info.default_factory is not None:
                default = info.default_factory()  # type: ignore[call-arg]
            else:
                default = "required"
            if isinstance(default, list):
                default = default if default else "[]"
            meaning = docs.get(field, info.description or "")
            lines.append(f"  {env_name(cls, field)} [{default}]")
            if meaning:
                lines.extend(textwrap.wrap(meaning, 92, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)
