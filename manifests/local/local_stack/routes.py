"""The routes watcher (the local stack's istiod): VirtualService file -> Envoy RDS file, live.

Every change of the VirtualService file (the rollout CLI's ``--router local`` replaces it
atomically) is translated and moved into Envoy's watched directory, so Envoy swaps its routes
without dropping a connection. A revision that does not translate is reported in the status
file and the log, and Envoy keeps the last good routes (as istiod keeps the last good config).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import yaml

from .envoy import translate
from .errors import TranslateError

__all__ = ["RoutePaths", "sync", "watch"]

log = logging.getLogger("local_stack.routes")


class RoutePaths:
    """Where the VirtualService, Envoy's routes and the watcher's status live in the state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.virtual_service = state_dir / "virtualservice.yaml"
        self.envoy_dir = state_dir / "envoy"
        self.rds = self.envoy_dir / "routes" / "rds.yaml"
        self.status = self.envoy_dir / "routes-status.json"


def _replace(path: Path, text: str, staging: Path) -> None:
    """Write beside, then rename into place (Envoy reloads on a move into its watched directory)."""
    tmp = staging / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


def sync(paths: RoutePaths, clusters: set[str]) -> str:
    """Translate the VirtualService file into the RDS file; returns the resourceVersion written."""
    vs: Any = yaml.safe_load(paths.virtual_service.read_text())
    if not isinstance(vs, dict):
        raise TranslateError(f"{paths.virtual_service} does not hold a VirtualService")
    rds = translate(vs, clusters)
    paths.rds.parent.mkdir(parents=True, exist_ok=True)
    _replace(paths.rds, yaml.safe_dump(rds, sort_keys=False), paths.envoy_dir)
    return str(rds["version_info"])


def _status(paths: RoutePaths, **fields: Any) -> None:
    _replace(paths.status, json.dumps({**fields, "time": time.time()}, sort_keys=True), paths.envoy_dir)


def watch(paths: RoutePaths, clusters: set[str], interval: float) -> None:
    """Poll the file's identity (inode, size, mtime); translate each new revision. Runs until killed."""
    seen: tuple[int, int, int] | None = None
    while True:
        try:
            st = paths.virtual_service.stat()
            ident = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            ident = None
        if ident is not None and ident != seen:
            seen = ident
            try:
                version = sync(paths, clusters)
            except (TranslateError, OSError, yaml.YAMLError) as e:
                log.error("VirtualService not applied, Envoy keeps its last routes: %s", e)
                _status(paths, ok=False, error=str(e))
            else:
                log.info("routes at resourceVersion %s handed to Envoy", version)
                _status(paths, ok=True, resourceVersion=version)
        time.sleep(interval)
