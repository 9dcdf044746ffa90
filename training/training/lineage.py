"""Lineage for the model card: code version, parent, metrics diff."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from serving_common.bundle import Bundle

__all__ = ["code_version", "parent_of"]


def code_version() -> str:
    """``git:<sha>`` of the checkout this package runs from (``-dirty`` with local changes),
    else ``training==<package version>`` (images have no ``.git``)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", str(here)],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if sha:
            return f"git:{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"training=={metadata.version('training')}"
    except metadata.PackageNotFoundError:
        return "training==unknown"


def parent_of(bundle: Bundle) -> dict[str, Any]:
    """``{"version", "content_hash", "location"}`` of the bundle a challenger descends from."""
    card = bundle.card or {}
    return {
        "version": bundle.version,
        "content_hash": card.get("content_hash") or bundle.content_hash(),
        "location": str(bundle.root),
    }
