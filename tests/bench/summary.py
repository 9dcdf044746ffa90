"""The last lines of ``make bench``: one line per bench from its results file, then the verdict.

    python tests/bench/summary.py --ran predictor chain explainer drift --failed chain

Exit status 1 when any bench failed (a run with an error answer, a failed sanity check, a crash);
targets missed (``MISS``) are reported but do not fail: on a shared 2-core machine a ratio can
miss by noise, while an error answer is never noise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench-results"


def _load(name: str) -> dict[str, Any] | None:
    file = RESULTS / f"{name}.json"
    return json.loads(file.read_text()) if file.is_file() else None


def predictor(data: dict[str, Any]) -> str:
    return (
        f"ours/naive throughput {data['geomean_throughput_ratio']:.2f}x, "
        f"naive/ours CPU per request {data['geomean_cpu_ratio']:.2f}x (geometric means; target >= 2x)"
    )


def chain(data: dict[str, Any]) -> str:
    c8 = {path: by_conc.get("8") for path, by_conc in data["ratios_vs_direct"].items() if path != "direct"}
    ratios = ", ".join(f"{path} {r:.2f}x" for path, r in c8.items() if r is not None)
    misses = sum(line.startswith("MISS") for line in data["targets"])
    return f"c8 vs predictor direct: {ratios}; targets missed: {misses} of {len(data['targets'])}"


def explainer(data: dict[str, Any]) -> str:
    return (
        f"{data['mean_s']:.3f} s per explanation (mean; p95 {data['p95_s']:.3f} s), "
        f"{data['predictor_requests_per_record']:g} predictor requests each"
    )


LINES = {"predictor": predictor, "chain": chain, "explainer": explainer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ran", nargs="*", default=[], help="benches run, in order")
    parser.add_argument("--failed", nargs="*", default=[], help="benches that exited non-zero")
    args = parser.parse_args(argv)
    print("\n== make bench summary (shared machines are noisy: compare ratios, not absolute numbers)")
    for name in args.ran:
        data = _load(name) if name in LINES and name not in args.failed else None
        detail = LINES[name](data) if data is not None else "see its output above"
        print(f"  {name:9} {'FAILED' if name in args.failed else 'ok':6}  {detail}")
    if args.failed:
        print(f"make bench: FAILED ({', '.join(args.failed)}): error answers or crashes, see the ERROR lines")
        return 1
    print("make bench: every run error-free (targets marked MISS above are reported, not failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
