"""``python -m training retrain``: options -> :func:`training.retrain.retrain`, one line, an exit code."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from serving_common.bundle import BundleError

from training import log_setup
from training.dataset import Requirements
from training.models import TRAINERS
from training.retrain import Source, retrain

log = logging.getLogger("training.retrain")
RESULT_LIMIT = 4096
"""Kubernetes keeps at most 4096 bytes of a termination message (``--result /dev/termination-log``)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training retrain",
        description="Train a challenger on production data and write it as a new bundle version "
        "only when it is not worse than the champion on the most recent labelled window.",
    )
    p.add_argument(
        "--champion", type=Path, required=True, help="the stable bundle (parent of the challenger)"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--feedback-url", help="base URL of the feedback store (GET /labelled)")
    src.add_argument("--labelled", type=Path, help="JSON Lines of /labelled pages or rows")
    p.add_argument("--since", type=float, default=0.0, help="only predictions made at or after (UNIX s)")
    p.add_argument("--inferenceservice", default=None, help="only this InferenceService's predictions")
    p.add_argument("--bundles", type=Path, required=True, help="root of the immutable version folders")
    p.add_argument("--storage-prefix", default=None, help="storageUri of --bundles, e.g. pvc://model-bundles")
    p.add_argument(
        "--model", choices=sorted(TRAINERS), default=None, help="default: the champion's model_type"
    )
    p.add_argument("--margin", type=float, default=0.01, help="allowed loss, CI bound (accuracy, ROC AUC)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--holdout-seconds", type=float, default=None, help="hold-out = this recent window")
    p.add_argument("--holdout-fraction", type=float, default=0.3, help="else the newest share of rows")
    p.add_argument("--min-rows", type=int, default=200, help="labelled production rows needed")
    p.add_argument("--min-holdout", type=int, default=100, help="hold-out rows needed")
    p.add_argument(
        "--original-share", type=float, default=0.5, help="largest share of original data in training"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--result",
        type=Path,
        default=None,
        help="also write the summary line here (<= 4 KiB: fits /dev/termination-log)",
    )
    p.add_argument(
        "--log_format",
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log line format: text (a terminal) or json (one object per line: a cluster's Job)",
    )
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    log_setup.configure(args.log_format)
    for name, value, low, high in (
        ("--margin", args.margin, 0.0, 1.0),
        ("--holdout-fraction", args.holdout_fraction, 0.01, 0.9),
        ("--original-share", args.original_share, 0.0, 0.95),
    ):
        if not low <= value <= high:
            log.error("%s must be within %g..%g, not %g", name, low, high, value)
            return 2
    if args.resamples < 100 or args.min_rows < 1 or args.min_holdout < 1:
        log.error("--resamples must be >= 100, --min-rows and --min-holdout >= 1")
        return 2
    req = Requirements(
        min_production_rows=args.min_rows,
        min_holdout_rows=args.min_holdout,
        holdout_seconds=args.holdout_seconds,
        holdout_fraction=args.holdout_fraction,
        original_share=args.original_share,
    )
    source = Source(
        url=args.feedback_url, file=args.labelled, since=args.since, inferenceservice=args.inferenceservice
    )
    try:
        run = retrain(
            args.champion,
            source,
            args.bundles,
            requirements=req,
            margin=args.margin,
            resamples=args.resamples,
            seed=args.seed,
            kind=args.model,
            storage_prefix=args.storage_prefix,
        )
    except BundleError as e:
        log.error("champion bundle: %s", e)
        return 2
    report = run.report()
    summary = {
        k: report.get(k) for k in ("decision", "version", "storage_uri", "reasons", "run_id", "content_hash")
    }
    line = json.dumps(summary, sort_keys=True)
    while len(line.encode()) > RESULT_LIMIT and summary["reasons"]:
        summary["reasons"] = [r[:200] for r in summary["reasons"][:-1]]
        line = json.dumps(summary, sort_keys=True)
    if args.result is not None:
        args.result.write_text(line)
    log.log(
        logging.INFO if summary["decision"] == "accepted" else logging.WARNING,
        "retrain %s: %s",
        summary["decision"],
        "; ".join(summary["reasons"] or []) or summary["version"],
        extra={"decision": summary["decision"], "version": summary["version"], "run_id": summary["run_id"]},
    )
    print(line, flush=True)
    return run.exit_code
