"""Errors of batch scoring, each with the process exit code a scheduler can act on.

Exception tree::

    BatchError              1   unexpected failure of the job
      InputInvalid          3   the input file cannot be scored: unreadable format, missing
                                columns, a column of the wrong type
      ModelUnusable         4   the bundle cannot be opened, verified or run
      CheckpointConflict    5   a checkpoint or output of another run is in the way
      EngineFailed          6   the InferenceService failed (after retries) or is unreachable
      TooManyRejects        7   more rejected records than ``--max-reject-fraction`` allows

Usage mistakes exit 2 (argparse). Bad *records* are never errors: they go to the rejects file.
"""

from __future__ import annotations

__all__ = [
    "BatchError",
    "CheckpointConflict",
    "EngineFailed",
    "InputInvalid",
    "ModelUnusable",
    "TooManyRejects",
]


class BatchError(Exception):
    """A batch job that cannot go on; ``exit_code`` is what the process exits with."""

    exit_code = 1


class InputInvalid(BatchError):
    exit_code = 3


class ModelUnusable(BatchError):
    exit_code = 4


class CheckpointConflict(BatchError):
    exit_code = 5


class EngineFailed(BatchError):
    exit_code = 6


class TooManyRejects(BatchError):
    exit_code = 7
