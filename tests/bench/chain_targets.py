"""The chain's targets from issue 10, checked on one run's results as ``ok`` / ``MISS`` lines.

At c8, over either hop and for either body: the chain reaches >= 0.5x the predictor direct, its
p99 stays <= 3x its p50, and the REST hop is within 20 % of the gRPC hop. At c1 nothing gets
slower: each path's ratio to the direct run stays >= 0.9x the same ratio in a baseline run.
Ratios within one run, never absolute numbers: the machine is shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import loadgen

HOPS = ("grpc", "rest")
BODIES = ("v1-records", "v2-columns")
TARGET_RATIO, TARGET_TAIL, TARGET_REST_VS_GRPC = 0.5, 3.0, 0.8
C1_KEEP = 0.9
"""At c1 a path's ratio to the direct run may not fall below 0.9x the baseline run's ("nothing slower")."""


def check(results: dict[str, dict[int, loadgen.Run]], conc: int = 8) -> list[str]:
    """The issue's targets at concurrency ``conc``, one ``ok`` / ``MISS`` line each."""
    lines = []
    direct = results.get("direct", {}).get(conc)
    for body in BODIES:
        hop_runs = {hop: results.get(f"{hop} {body}", {}).get(conc) for hop in HOPS}
        for hop, run in hop_runs.items():
            name = f"{hop} {body}"
            if run is None or direct is None:
                lines.append(f"MISS {name} c{conc}: not measured (see the ERROR lines)")
                continue
            ratio = run.rps / direct.rps
            verdict = "ok  " if ratio >= TARGET_RATIO else "MISS"
            lines.append(
                f"{verdict} {name} c{conc}: {ratio:.2f}x the predictor direct (target >= {TARGET_RATIO}x)"
            )
            tail = run.p99_ms / run.p50_ms
            verdict = "ok  " if tail <= TARGET_TAIL else "MISS"
            lines.append(f"{verdict} {name} c{conc}: p99 {tail:.1f}x p50 (target <= {TARGET_TAIL:g}x)")
        grpc, rest = hop_runs["grpc"], hop_runs["rest"]
        if grpc and rest:
            share = rest.rps / grpc.rps
            verdict = "ok  " if share >= TARGET_REST_VS_GRPC else "MISS"
            lines.append(
                f"{verdict} rest vs grpc hop, {body} c{conc}: {share:.2f}x (target: within 20 %, >= 0.8x)"
            )
    return lines


def check_c1(results: dict[str, dict[int, loadgen.Run]], baseline: Path) -> list[str]:
    """Each chain path's c1 ratio to the direct run against the same ratio in ``baseline``."""
    if not baseline.is_file():
        return [f"info no baseline {baseline}: c1 not compared (make bench keeps the last run as one)"]
    before = json.loads(baseline.read_text()).get("ratios_vs_direct", {})
    direct = results.get("direct", {}).get(1)
    lines = []
    for name, by_conc in results.items():
        old = before.get(name, {}).get("1")
        if name == "direct" or 1 not in by_conc or direct is None or not old:
            continue
        now = by_conc[1].rps / direct.rps
        verdict = "ok  " if now >= C1_KEEP * old else "MISS"
        lines.append(
            f"{verdict} {name} c1: {now:.2f}x direct, last run {old:.2f}x (target: not below {C1_KEEP}x it)"
        )
    return lines
