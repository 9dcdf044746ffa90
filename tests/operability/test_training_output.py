"""Issue 16 (3): training shows its progress and nothing else (no library noise)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import REPO


def test_training_prints_four_steps_and_the_result_as_json(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    proc = subprocess.run(
        [sys.executable, "-m", "training", "--model", "gbm", "--out", str(out), "--log_format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # only our lines: all JSON
    assert {d["logger"] for d in lines} == {"training"}, lines
    assert [d.get("step") for d in lines[:4]] == [1, 2, 3, 4]
    assert lines[-1]["message"].startswith(f"wrote {out}: roc_auc=")
    assert (out / "model.onnx").is_file()
