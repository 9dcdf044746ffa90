"""``python -m predictor.batch``: score a file of raw records with the model bundle.

    python -m predictor.batch --model_dir .bundles/gbm --input records.csv --output scores.csv

Reads CSV, JSON Lines or Parquet (by extension, or ``--input-format``), validates and vectorises
every record with the bundle's feature spec, scores the good ones (in-process onnxruntime by
default, or a running predictor with ``--engine v2-rest|v2-grpc --predictor-host H:P``), and
writes ``row, [id,] label, probability, p_<class>..., model_version`` to ``--output`` and every
rejected record with its number and reasons to ``--rejects`` (default ``<output>.rejects.<ext>``).
A rerun after a crash resumes after the last completed chunk. ``--shard-index I --shard-count N``
(or ``JOB_COMPLETION_INDEX``) scores the I-th of N contiguous slices; ``{shard}`` in the output
names is replaced by the shard index, and without it the names get ``-NNNNN-of-NNNNN``.
Exit codes: 0 done, 2 usage, 3 bad input file, 4 model unusable, 5 checkpoint/output conflict,
6 predictor failed, 7 too many rejects, 1 unexpected.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from serving_common import Bundle, BundleError, IntegrityError
from serving_common.operability import (
    ConfigError,
    check_environment,
    configure_logging,
    env_help,
    settings_or_error,
)

from predictor.batch.engine import Engine, OnnxEngine
from predictor.batch.errors import BatchError, InputInvalid, ModelUnusable
from predictor.batch.job import Job, run
from predictor.batch.settings import BatchSettings
from predictor.batch.sinks import default_rejects_path
from predictor.batch.sources import FORMATS, detect_format

__all__ = ["main", "parse_args"]

log = logging.getLogger("predictor.batch")


def parse_args(argv: list[str] | None, settings: BatchSettings) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m predictor.batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=env_help([BatchSettings]),
    )
    p.add_argument(
        "--model_dir",
        "--model-dir",
        default="/mnt/models",
        help="model bundle directory (default /mnt/models)",
    )
    p.add_argument("--input", required=True, type=Path, help="CSV, JSON Lines or Parquet file of raw records")
    p.add_argument("--output", required=True, type=Path, help="predictions file (.csv, .jsonl, .parquet)")
    p.add_argument("--rejects", type=Path, help="rejected records (default <output>.rejects.<ext>)")
    p.add_argument("--input-format", choices=["csv", "jsonl", "parquet"])
    p.add_argument("--output-format", choices=["csv", "jsonl", "parquet"])
    p.add_argument(
        "--id-column", help="input column copied to the output as 'id' (the row number is always there)"
    )
    p.add_argument(
        "--shard-index",
        type=int,
        default=settings.job_completion_index,
        help="this worker's shard (default: JOB_COMPLETION_INDEX, else 0)",
    )
    p.add_argument("--shard-count", type=int, default=1, help="number of shards (default 1)")
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=settings.chunk_rows,
        help=f"records per chunk, the unit of memory and of checkpoints (default {settings.chunk_rows})",
    )
    p.add_argument(
        "--batch-rows",
        type=int,
        default=settings.batch_rows,
        help=f"rows per model call / V2 request (default {settings.batch_rows})",
    )
    p.add_argument("--engine", choices=["onnx", "v2-rest", "v2-grpc"], default=settings.engine)
    p.add_argument("--predictor-host", help="HOST:PORT of the predictor (V2 engines)")
    p.add_argument("--model-name", help="model name on the predictor (V2 engines; default: the bundle's)")
    p.add_argument("--concurrency", type=int, default=settings.concurrency, help="V2 requests in flight")
    p.add_argument("--restart", action="store_true", help="discard a previous run's checkpoint and parts")
    p.add_argument("--overwrite", action="store_true", help="replace existing output and rejects files")
    p.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default=settings.progress,
        help="progress bar on stderr (auto: only on a terminal)",
    )
    p.add_argument(
        "--max-reject-fraction",
        type=float,
        default=settings.max_reject_fraction,
        help="exit 7 when more of the records are rejected (default 1.0: never)",
    )
    args = p.parse_args(argv)
    if args.shard_index is None:
        args.shard_index = 0
    if args.shard_count < 1 or not 0 <= args.shard_index < args.shard_count:
        p.error(
            f"--shard-index must be in [0, {args.shard_count}) and --shard-count >= 1; "
            f"got {args.shard_index} of {args.shard_count}"
        )
    for name in ("chunk_rows", "batch_rows", "concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.0 <= args.max_reject_fraction <= 1.0:
        p.error("--max-reject-fraction must be in [0, 1]")
    if args.engine != "onnx" and not args.predictor_host:
        p.error(f"--engine {args.engine} needs --predictor-host HOST:PORT")
    return args


def sharded(path: Path, index: int, count: int) -> Path:
    """``path`` for shard ``index``: ``{shard}`` replaced, else ``name-00003-of-00008.ext``."""
    if "{shard}" in path.name:
        return path.with_name(path.name.replace("{shard}", f"{index:05d}"))
    if count == 1:
        return path
    return path.with_name(f"{path.stem}-{index:05d}-of-{count:05d}{path.suffix}")


def _engine(args: argparse.Namespace, bundle: Bundle, settings: BatchSettings) -> Engine:
    if args.engine == "onnx":
        return OnnxEngine(bundle, args.batch_rows, settings.intra_op_threads)
    from predictor.batch.remote import V2Engine

    return V2Engine.create(args, bundle, settings)


def main(argv: list[str] | None = None) -> int:
    try:
        check_environment("PREDICTOR_BATCH_", [BatchSettings], help_hint="python -m predictor.batch --help")
        settings = settings_or_error(BatchSettings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2  # a usage mistake, as argparse's
    configure_logging("batch", settings.log_format, settings.log_level)
    args = parse_args(argv, settings)
    try:
        try:
            bundle = Bundle.open(args.model_dir)
            bundle.verify()
        except (BundleError, IntegrityError) as e:
            raise ModelUnusable(str(e)) from e
        output = sharded(args.output, args.shard_index, args.shard_count)
        out_format = detect_format(output, args.output_format)
        rejects = (
            sharded(args.rejects, args.shard_index, args.shard_count)
            if args.rejects
            else (default_rejects_path(output))
        )
        if rejects.suffix.lower() not in FORMATS or FORMATS[rejects.suffix.lower()] != out_format:
            raise InputInvalid(f"--rejects {rejects} must have the output's format ({out_format})")
        job = Job(
            bundle=bundle,
            input=args.input,
            input_format=detect_format(args.input, args.input_format),
            output=output,
            output_format=out_format,
            rejects=rejects,
            id_column=args.id_column,
            shard_index=args.shard_index,
            shard_count=args.shard_count,
            chunk_rows=args.chunk_rows,
            restart=args.restart,
            overwrite=args.overwrite,
            progress=args.progress,
            max_reject_fraction=args.max_reject_fraction,
        )
        summary = run(job, lambda: _engine(args, bundle, settings))
    except BatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(summary.json())
    log.info(
        "scored %d and rejected %d of %d records in %.1f s (%.0f rows/s) -> %s",
        summary.scored,
        summary.rejected,
        summary.rows,
        summary.seconds,
        summary.rows_per_second,
        output,
    )
    return 0
