"""One batch scoring run: read chunks, vectorise, score, write parts, checkpoint; join at the end."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from serving_common import Bundle, BundleError, FeatureSpec, Problem

from predictor.batch.checkpoint import Checkpoint
from predictor.batch.chunk import Chunk
from predictor.batch.engine import Engine, Scores
from predictor.batch.errors import CheckpointConflict, ModelUnusable, TooManyRejects
from predictor.batch.progress import Progress
from predictor.batch.sinks import Outputs, prediction_schema, rejects_schema
from predictor.batch.sources import Format, Source
from predictor.batch.vectorise import vectorise

__all__ = ["Job", "Summary", "shard_range"]

log = logging.getLogger("predictor.batch")


def shard_range(total: int, index: int, count: int) -> tuple[int, int]:
    """Records ``[start, end)`` of shard ``index`` of ``count``: contiguous, sizes within one."""
    return total * index // count, total * (index + 1) // count


@dataclass(frozen=True)
class Job:
    bundle: Bundle
    input: Path
    input_format: Format
    output: Path
    output_format: Format
    rejects: Path
    id_column: str | None = None
    shard_index: int = 0
    shard_count: int = 1
    chunk_rows: int = 10_000
    restart: bool = False
    overwrite: bool = False
    progress: Literal["auto", "always", "never"] = "auto"
    max_reject_fraction: float = 1.0


@dataclass
class _Tally:
    chunks: int
    rows: int
    scored: int
    rejected: int


@dataclass(frozen=True)
class Summary:
    input: str
    output: str
    rejects: str
    shard: str
    rows: int
    scored: int
    rejected: int
    seconds: float
    rows_per_second: float
    model_version: str

    def json(self) -> str:
        return json.dumps(self.__dict__)


def _json_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _rejects(
    chunk_ids: list[Any] | None,
    problems: dict[int, list[Problem]],
    record: Callable[[int], Any],
    start: int,
    with_id: bool,
) -> dict[str, list[Any]]:
    rows = sorted(problems)
    out: dict[str, list[Any]] = {"row": [start + i for i in rows]}
    if with_id:
        out["id"] = [None if chunk_ids is None or chunk_ids[i] is None else str(chunk_ids[i]) for i in rows]
    out["reason"] = ["; ".join(f"field {p.field!r}: {p.message}" for p in problems[i]) for i in rows]
    out["record"] = [
        json.dumps({k: _json_value(v) for k, v in record(i).items()}, allow_nan=True) for i in rows
    ]
    return out


def _predictions(
    start: int,
    keep: np.ndarray,
    ids: list[Any] | None,
    scores: Scores,
    classes: Sequence[str],
    version: str,
    with_id: bool,
) -> dict[str, Any]:
    labels = scores.labels
    out: dict[str, Any] = {"row": keep.astype(np.int64) + start}
    if with_id:
        out["id"] = [None if ids is None or ids[i] is None else str(ids[i]) for i in keep.tolist()]
    names = np.asarray(classes, dtype=object)
    out["label"] = names[labels] if len(labels) else []
    out["probability"] = scores.probabilities[np.arange(len(labels)), labels].astype(np.float32)
    for c, name in enumerate(classes):
        out[f"p_{name}"] = scores.probabilities[:, c].astype(np.float32)
    out["model_version"] = [version] * len(labels)
    return out


def run(job: Job, make_engine: Callable[[], Engine]) -> Summary:
    """Score the job's shard of the input; resumes from a checkpoint of the same run."""
    try:
        spec: FeatureSpec = job.bundle.spec()
    except BundleError as e:
        raise ModelUnusable(str(e)) from e
    source = Source(job.input, job.input_format, spec, job.id_column)
    source.check()
    total = source.count()
    start, end = shard_range(total, job.shard_index, job.shard_count)
    with_id = job.id_column is not None
    outputs = Outputs(
        job.output,
        job.rejects,
        job.output_format,
        prediction_schema(spec.classes, with_id),
        rejects_schema(with_id),
    )
    engine = make_engine()
    try:
        stat = job.input.stat()
        checkpoint = Checkpoint(
            outputs.parts / "checkpoint.json",
            {
                "input": str(job.input.resolve()),
                "input_size": stat.st_size,
                "input_mtime_ns": stat.st_mtime_ns,
                "rows": [start, end],
                "shard": [job.shard_index, job.shard_count],
                "chunk_rows": job.chunk_rows,
                "id_column": job.id_column,
                "output_format": job.output_format,
                "model_version": engine.model_version,
            },
        )
        if job.restart:
            outputs.discard()
        saved = checkpoint.load()
        if saved is None and not job.overwrite:
            for existing in (job.output, job.rejects):
                if existing.exists():
                    raise CheckpointConflict(
                        f"{existing} exists and no checkpoint of this run is beside it; "
                        "pass --overwrite to replace it"
                    )
        chunks_done = int(saved["chunks_done"]) if saved else 0
        scored = int(saved["scored"]) if saved else 0
        rejected = int(saved["rejected"]) if saved else 0
        rows_done = min(chunks_done * job.chunk_rows, end - start)
        if saved:
            log.info("resuming %s after chunk %d (%d rows done)", job.output, chunks_done, rows_done)
        outputs.prepare(chunks_done)
    except BaseException:
        engine.close()
        raise
    progress = Progress(end - start, rows_done, job.progress)
    began = time.monotonic()
    tally = _Tally(chunks_done, rows_done, scored, rejected)
    empty = Scores(np.empty(0, np.int64), np.empty((0, len(spec.classes)), np.float32))

    def finish(
        chunk: Chunk, matrix: np.ndarray, keep: np.ndarray, problems: dict[int, list[Problem]]
    ) -> None:
        """Score one chunk, write its parts, then checkpoint it (in order, on the one worker)."""
        scores = engine.score(matrix) if len(keep) else empty
        outputs.write_chunk(
            tally.chunks,
            _predictions(chunk.start, keep, chunk.ids, scores, spec.classes, engine.model_version, with_id),
            _rejects(chunk.ids, problems, chunk.record, chunk.start, with_id),
        )
        tally.chunks += 1
        tally.rows += chunk.n
        tally.scored += len(keep)
        tally.rejected += len(problems)
        checkpoint.save(tally.chunks, tally.rows, tally.scored, tally.rejected)

    # Two stages: the worker scores, writes and checkpoints chunk k (onnxruntime, sockets and
    # fsync release the GIL) while this thread reads and vectorises chunk k + 1; at most two
    # chunks are in memory.
    in_flight: tuple[Future[None], int] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score") as worker:
        try:
            for chunk in source.chunks(start + rows_done, end, job.chunk_rows):
                matrix, keep, problems = vectorise(spec, chunk)
                if in_flight is not None:
                    in_flight[0].result()
                    progress.update(in_flight[1])
                in_flight = (worker.submit(finish, chunk, matrix, keep, problems), chunk.n)
            if in_flight is not None:
                in_flight[0].result()
                progress.update(in_flight[1])
        finally:
            if in_flight is not None:
                in_flight[0].cancel()
            progress.close()
            engine.close()
    chunk_number, scored, rejected = tally.chunks, tally.scored, tally.rejected
    outputs.finish(chunk_number)
    seconds = time.monotonic() - began
    summary = Summary(
        str(job.input),
        str(job.output),
        str(job.rejects),
        f"{job.shard_index}/{job.shard_count}",
        end - start,
        scored,
        rejected,
        round(seconds, 3),
        round(progress.rate(), 1),
        engine.model_version,
    )
    if end > start and rejected / (end - start) > job.max_reject_fraction:
        raise TooManyRejects(
            f"{rejected} of {end - start} records rejected ({rejected / (end - start):.1%}), more than "
            f"--max-reject-fraction {job.max_reject_fraction:g}; see {job.rejects}"
        )
    return summary
