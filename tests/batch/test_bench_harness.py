"""The batch bench is honest: it refuses outputs that disagree, and a small run reports a ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from support import REPO

sys.path.insert(0, str(REPO / "tests" / "bench"))
import bench_batch
import loadgen


def test_the_sanity_check_refuses_outputs_that_disagree(tmp_path: Path) -> None:
    ours = tmp_path / "ours.csv"
    raw = tmp_path / "raw.csv"
    pacsv.write_csv(pa.table({"label": ["a", "b"], "p_b": pa.array([0.25, 0.75], pa.float32())}), ours)
    pacsv.write_csv(pa.table({"label": [0, 1], "p_low": [0.75, 0.25], "p_high": [0.25, 0.75]}), raw)
    bench_batch.check_same(ours, raw, ("a", "b"))
    pacsv.write_csv(pa.table({"label": [0, 1], "p_low": [0.75, 0.2], "p_high": [0.25, 0.8]}), raw)
    with pytest.raises(loadgen.SanityError, match="probabilities"):
        bench_batch.check_same(ours, raw, ("a", "b"))
    pacsv.write_csv(pa.table({"label": [1, 1], "p_low": [0.75, 0.25], "p_high": [0.25, 0.75]}), raw)
    with pytest.raises(loadgen.SanityError, match="labels differ"):
        bench_batch.check_same(ours, raw, ("a", "b"))


def test_a_small_run_checks_then_reports_the_ratio(gbm_bundle: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "tests/bench/bench_batch.py", "--bundle", str(gbm_bundle), "--rows", "3000",
         "--repeat", "1", "--no-remote", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "predictor.batch / raw onnxruntime = " in done.stdout
    assert "ERROR" not in done.stdout
    results = json.loads((tmp_path / "batch.json").read_text())
    assert results["rows"] == 3000 and results["ratio"] > 0
