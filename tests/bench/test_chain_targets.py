"""The chain's target lines and the profile summary, on results made up for the purpose."""

from __future__ import annotations

import json
from pathlib import Path

import chain_targets
import cpu_profile
from loadgen import Run


def run(rps: float, p50: float = 1.0, p99: float = 2.0) -> Run:
    return Run(requests=int(rps), seconds=1.0, p50_ms=p50, p99_ms=p99, statuses={"200": int(rps)})


def test_targets_at_c8_are_ok_or_miss_by_ratio() -> None:
    results = {
        "direct": {8: run(1000)},
        "grpc v1-records": {8: run(600)},
        "rest v1-records": {8: run(400, p50=2.0, p99=7.0)},
        "grpc v2-columns": {8: run(500)},
    }
    assert chain_targets.check(results) == [
        "ok   grpc v1-records c8: 0.60x the predictor direct (target >= 0.5x)",
        "ok   grpc v1-records c8: p99 2.0x p50 (target <= 3x)",
        "MISS rest v1-records c8: 0.40x the predictor direct (target >= 0.5x)",
        "MISS rest v1-records c8: p99 3.5x p50 (target <= 3x)",
        "MISS rest vs grpc hop, v1-records c8: 0.67x (target: within 20 %, >= 0.8x)",
        "ok   grpc v2-columns c8: 0.50x the predictor direct (target >= 0.5x)",
        "ok   grpc v2-columns c8: p99 2.0x p50 (target <= 3x)",
        "MISS rest v2-columns c8: not measured (see the ERROR lines)",
    ]


def test_c1_compares_the_ratio_to_direct_with_the_baseline_run(tmp_path: Path) -> None:
    baseline = tmp_path / "chain-previous.json"
    baseline.write_text(
        json.dumps({"ratios_vs_direct": {"grpc v1-records": {"1": 0.2}, "rest v1-records": {"1": 0.2}}})
    )
    results = {"direct": {1: run(1000)}, "grpc v1-records": {1: run(181)}, "rest v1-records": {1: run(179)}}
    assert chain_targets.check_c1(results, baseline) == [
        "ok   grpc v1-records c1: 0.18x direct, last run 0.20x (target: not below 0.9x it)",
        "MISS rest v1-records c1: 0.18x direct, last run 0.20x (target: not below 0.9x it)",
    ]
    assert chain_targets.check_c1(results, tmp_path / "absent.json")[0].startswith("info no baseline")


def test_profile_shares_by_self_and_telling_inclusive_frames(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (app/__main__.py:3);serve (app/rest.py:10);decode (app/codec.py:5) 6\n"
        "main (app/__main__.py:3);serve (app/rest.py:12);encode (app/codec.py:9) 3\n"
        "main (app/__main__.py:3);log (logging/__init__.py:99) 1\n"
    )
    hot = cpu_profile.hot(raw)
    assert hot["self"] == [
        ("decode (app/codec.py)", 0.6),
        ("encode (app/codec.py)", 0.3),
        ("log (logging/__init__.py)", 0.1),
    ]
    assert hot["inclusive"][0] == ("serve (app/rest.py)", 0.9)
    assert "main (app/__main__.py)" not in dict(hot["inclusive"])
