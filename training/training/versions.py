"""Immutable bundle versions: ``<root>/<version>/``, written to a hidden temporary folder and
renamed into place in one step, never overwritten."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

__all__ = ["VersionExistsError", "new_version", "publish"]


class VersionExistsError(FileExistsError):
    """A bundle version folder is immutable: it already exists."""


def new_version(kind: str, now: dt.datetime | None = None) -> str:
    """``<kind>-<UTC yyyymmddThhmmssZ>``: sortable, one per second."""
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{kind}-{at:%Y%m%dT%H%M%SZ}"


def publish(root: Path, version: str, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` into ``root/.tmp-<version>`` then rename it to ``root/<version>``."""
    final = root / version
    if final.exists():
        raise VersionExistsError(f"bundle version {final} already exists; versions are never overwritten")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{version}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        try:
            tmp.rename(final)
        except OSError as e:
            raise VersionExistsError(f"bundle version {final} appeared while writing: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for path in sorted(final.rglob("*"), reverse=True):
        path.chmod(0o444 if path.is_file() else 0o555)
    final.chmod(0o555)
    return final
