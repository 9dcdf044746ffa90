"""``python -m training --model gbm|mlp --out DIR``: train, export to ONNX, check parity, write a bundle.

``python -m training retrain --champion DIR (--feedback-url URL | --labelled FILE) --bundles DIR``:
a challenger from production data, judged against the champion (see :mod:`training.retrain`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training import log_setup
from training.bundle_writer import PARITY_TOLERANCE, ParityError, train_bundle
from training.models import TRAINERS

log = logging.getLogger("training")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["retrain"]:
        from training import retrain_cli

        return retrain_cli.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--model", choices=sorted(TRAINERS), required=True, help="which model to train")
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument("--seed", type=int, default=7, help="seed for the split and the model")
    parser.add_argument("--name", default="diabetes-risk", help="model name in the card")
    parser.add_argument("--version", default=None, help="model version (default: the model kind + '-1')")
    parser.add_argument("--log_format", choices=["text", "json"], default="text", help="log line format")
    args = parser.parse_args(argv)
    log_setup.configure(args.log_format)
    try:
        card = train_bundle(args.model, args.out, seed=args.seed, name=args.name, version=args.version)
    except ParityError as e:
        log.error("export failed: %s (limit %g)", e, PARITY_TOLERANCE)
        return 1
    m = card["metrics"]
    log.info(
        "wrote %s: roc_auc=%.4f accuracy=%.4f f1=%.4f parity=%.2e",
        args.out,
        m["roc_auc"],
        m["accuracy"],
        m["f1"],
        card["parity"]["max_abs_diff"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
