"""Crash and resume (SIGKILL mid-file: every row scored exactly once), and sharded runs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from batch_files import batch, columns, read, write
from predictor.batch.job import shard_range
from support import REPO


def _kill_mid_file(args: list[str], checkpoint: Path, after_chunks: int) -> None:
    """Start the CLI, SIGKILL it once the checkpoint counts ``after_chunks`` chunks (bounded wait)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "predictor.batch", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(3000):  # bounded: 300 s at most
            if proc.poll() is not None:
                break
            try:
                if json.loads(checkpoint.read_text())["chunks_done"] >= after_chunks:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed mid-file"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_run_killed_mid_file_resumes_and_scores_every_row_exactly_once(
    gbm_bundle: Path, tmp_path: Path, fmt: str
) -> None:
    cols = columns(gbm_bundle, 100_000)
    cols["age"][5_432] = None  # one reject, to check rejects are not duplicated either
    src = write(tmp_path / f"records.{fmt}", cols)
    out = tmp_path / f"scores.{fmt}"
    args = [
        "--model_dir",
        str(gbm_bundle),
        "--input",
        str(src),
        "--output",
        str(out),
        "--id-column",
        "pid",
        "--chunk-rows",
        "500",
    ]
    _kill_mid_file(args, tmp_path / f"scores.{fmt}.parts" / "checkpoint.json", after_chunks=3)
    assert not out.exists()
    saved = json.loads((tmp_path / f"scores.{fmt}.parts" / "checkpoint.json").read_text())
    assert 0 < saved["chunks_done"] < 200

    resumed = batch(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} after chunk" in resumed.stderr
    table = read(out)
    assert table.column("row").to_pylist() == [r for r in range(100_000) if r != 5_432]
    assert read(tmp_path / f"scores.rejects.{fmt}").column("row").to_pylist() == [5_432]
    summary = json.loads(resumed.stdout)
    assert (summary["scored"], summary["rejected"]) == (99_999, 1)

    whole = batch(
        "--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / f"whole.{fmt}", "--id-column", "pid"
    )
    assert whole.returncode == 0, whole.stderr
    assert read(tmp_path / f"whole.{fmt}").equals(table)


def test_parts_written_after_the_last_checkpoint_are_discarded_on_resume(tmp_path: Path) -> None:
    from predictor.batch.sinks import Outputs, prediction_schema, rejects_schema

    outputs = Outputs(
        tmp_path / "o.csv",
        tmp_path / "o.rejects.csv",
        "csv",
        prediction_schema(["a", "b"], False),
        rejects_schema(False),
    )
    outputs.parts.mkdir()
    for name in ("pred-000000.csv", "rej-000000.csv", "pred-000001.csv", "pred-000002.csv.tmp"):
        (outputs.parts / name).write_text("x")
    outputs.prepare(chunks_done=1)
    assert sorted(p.name for p in outputs.parts.iterdir()) == ["pred-000000.csv", "rej-000000.csv"]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_sharded_runs_concatenate_to_the_unsharded_output(gbm_bundle: Path, tmp_path: Path, fmt: str) -> None:
    cols = columns(gbm_bundle, 10_001)
    cols["sex"][7_000] = "unknown"
    src = write(tmp_path / f"records.{fmt}", cols)
    whole = batch(
        "--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / f"all.{fmt}", "--chunk-rows", "1000"
    )
    assert whole.returncode == 0, whole.stderr
    for index in range(3):
        # the Indexed Job's way: JOB_COMPLETION_INDEX, `{shard}` in the output names
        done = batch(
            "--model_dir",
            gbm_bundle,
            "--input",
            src,
            "--output",
            tmp_path / f"part-{{shard}}.{fmt}",
            "--rejects",
            tmp_path / f"rejects-{{shard}}.{fmt}",
            "--shard-count",
            "3",
            "--chunk-rows",
            "1000",
            env={"JOB_COMPLETION_INDEX": str(index)},
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["shard"] == f"{index}/3"
    parts = [read(tmp_path / f"part-{i:05d}.{fmt}") for i in range(3)]
    assert [p.num_rows for p in parts] == [3333, 3334, 3334 - 1]  # record 7000 (shard 2) is rejected
    assert pa.concat_tables(parts).equals(read(tmp_path / f"all.{fmt}"))
    rejects = [r["row"] for i in range(3) for r in read(tmp_path / f"rejects-{i:05d}.{fmt}").to_pylist()]
    assert rejects == [7_000]


def test_shard_ranges_cover_every_record_once() -> None:
    for total in (0, 1, 7, 10_001):
        for count in (1, 2, 3, 8):
            ranges = [shard_range(total, i, count) for i in range(count)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
            assert max(e - s for s, e in ranges) - min(e - s for s, e in ranges) <= 1


def test_shard_flags_without_placeholder_name_the_files_by_shard(gbm_bundle: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "records.csv", columns(gbm_bundle, 10))
    done = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        src,
        "--output",
        tmp_path / "o.csv",
        "--shard-index",
        "1",
        "--shard-count",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert read(tmp_path / "o-00001-of-00002.csv").column("row").to_pylist() == [5, 6, 7, 8, 9]
    assert (tmp_path / "o-00001-of-00002.rejects.csv").is_file()
    assert not os.path.exists(tmp_path / "o.csv")
