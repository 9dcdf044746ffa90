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


def test_retrain_logs_json_lines_and_prints_its_decision(gbm_bundle: Path, tmp_path: Path) -> None:
    """``training retrain --log_format json`` (the cluster's Job): stderr only JSON lines, the decision
    on stdout; too few labelled rows is a refusal naming what is missing, not a crash."""
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "training", "retrain", "--champion", str(gbm_bundle),
         "--labelled", str(labelled), "--bundles", str(tmp_path / "bundles"), "--log_format", "json"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # only our lines: all JSON
    assert lines and {d["component"] for d in lines} == {"training"}, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["decision"] == "refused" and decision["version"] is None
    assert "at least 200 are needed" in decision["reasons"][0]
    (last,) = [d for d in lines if d.get("decision")]
    assert (last["level"], last["decision"]) == ("WARNING", "refused")
    assert last["message"].startswith("retrain refused: only 0 labelled production rows")
