"""The checkpoint: which run this is and how many chunks of it are done, written atomically.

A rerun with the same identity (input file size and mtime, shard, chunk size, model version,
output format) resumes after the last completed chunk; any other identity is refused, so a
resumed run never mixes two inputs or two models in one output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from predictor.batch.errors import CheckpointConflict

__all__ = ["Checkpoint", "atomic_write"]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` so that a reader (or a rerun after SIGKILL) sees the old or the new bytes."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoint:
    """``checkpoint.json`` in the run's parts folder."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity

    def load(self) -> dict[str, Any] | None:
        """The saved progress of this same run, ``None`` when there is none; raises on another run's."""
        if not self.path.is_file():
            return None
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointConflict(f"{self.path} cannot be read ({e}); remove it to start over") from e
        if not isinstance(saved, dict) or saved.get("identity") != self.identity:
            theirs = saved.get("identity") if isinstance(saved, dict) else None
            differ = sorted(
                k
                for k in set(self.identity) | set(theirs or {})
                if (theirs or {}).get(k) != self.identity.get(k)
            )
            raise CheckpointConflict(
                f"{self.path} belongs to another run (differs in: {', '.join(differ)}); "
                "rerun with --restart to discard it, or write to another --output"
            )
        return saved

    def save(self, chunks_done: int, rows_done: int, scored: int, rejected: int) -> None:
        state = {
            "identity": self.identity,
            "chunks_done": chunks_done,
            "rows_done": rows_done,
            "scored": scored,
            "rejected": rejected,
        }
        atomic_write(self.path, json.dumps(state, indent=1).encode())
