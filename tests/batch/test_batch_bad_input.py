"""Bad input files, models and runs: one clear line on stderr and a distinct exit code each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from batch_files import batch, columns, write


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_csv_without_a_required_column_exits_3_naming_it(gbm_bundle: Path, tmp_path: Path) -> None:
    cols = columns(gbm_bundle, 10)
    del cols["bmi"], cols["age"]
    src = write(tmp_path / "records.csv", cols)
    done = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "o.csv")
    assert done.returncode == 3
    line = _one_error_line(done.stderr)
    assert "the CSV header lacks column(s) 'age', 'bmi'" in line
    assert not (tmp_path / "o.csv").exists()


def test_a_missing_id_column_exits_3(gbm_bundle: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "records.jsonl", columns(gbm_bundle, 10))
    done = batch(
        "--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "o.csv", "--id-column", "mrn"
    )
    assert done.returncode == 3
    assert "lacks column(s) 'mrn'" in _one_error_line(done.stderr)


def test_a_parquet_column_of_the_wrong_type_exits_3(gbm_bundle: Path, tmp_path: Path) -> None:
    cols = columns(gbm_bundle, 10)
    cols["age"] = [str(v) for v in cols["age"]]
    src = tmp_path / "records.parquet"
    pq.write_table(pa.table(cols), src)
    done = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "o.parquet")
    assert done.returncode == 3
    assert "column 'age' has type string; expected numbers" in _one_error_line(done.stderr)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("records.parquet", b"this is not parquet", "cannot read it as Parquet"),
        ("records.csv", b"", "the CSV file is empty"),
        (
            "records.csv",
            b'age,sex,bmi,bp,tc,ldl,hdl,tch,ltg,glu\n1,"female\n',
            "cannot read records 0-0 as CSV",
        ),
        ("records.xlsx", b"PK", "cannot tell the format from the extension '.xlsx'"),
    ],
)
def test_unreadable_files_exit_3(
    gbm_bundle: Path, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    done = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "o.csv")
    assert done.returncode == 3
    assert expected in _one_error_line(done.stderr)


def test_a_missing_input_exits_3(gbm_bundle: Path, tmp_path: Path) -> None:
    done = batch("--model_dir", gbm_bundle, "--input", tmp_path / "nope.csv", "--output", tmp_path / "o.csv")
    assert done.returncode == 3
    assert "nope.csv: no such file" in _one_error_line(done.stderr)


def test_a_model_that_does_not_match_its_card_exits_4(gbm_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(gbm_bundle, bundle)
    with (bundle / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    src = write(tmp_path / "records.csv", columns(gbm_bundle, 10))
    done = batch("--model_dir", bundle, "--input", src, "--output", tmp_path / "o.csv")
    assert done.returncode == 4
    assert "sha256" in _one_error_line(done.stderr)


def test_existing_output_and_foreign_checkpoints_exit_5(gbm_bundle: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "records.csv", columns(gbm_bundle, 10))
    out = tmp_path / "o.csv"
    assert batch("--model_dir", gbm_bundle, "--input", src, "--output", out).returncode == 0
    again = batch("--model_dir", gbm_bundle, "--input", src, "--output", out)
    assert again.returncode == 5
    assert "exists" in _one_error_line(again.stderr) and "--overwrite" in again.stderr
    assert batch("--model_dir", gbm_bundle, "--input", src, "--output", out, "--overwrite").returncode == 0

    parts = tmp_path / "p.csv.parts"
    parts.mkdir()
    (parts / "checkpoint.json").write_text(
        json.dumps({"identity": {"input": "/elsewhere.csv"}, "chunks_done": 1})
    )
    foreign = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "p.csv")
    assert foreign.returncode == 5
    assert "belongs to another run" in _one_error_line(foreign.stderr)
    restarted = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "p.csv", "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["scored"] == 10


def test_too_many_rejects_exit_7_after_writing_both_files(gbm_bundle: Path, tmp_path: Path) -> None:
    cols = columns(gbm_bundle, 10)
    cols["sex"][:3] = ["x", "y", "z"]
    src = write(tmp_path / "records.csv", cols)
    done = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        src,
        "--output",
        tmp_path / "o.csv",
        "--max-reject-fraction",
        "0.2",
    )
    assert done.returncode == 7
    assert "3 of 10 records rejected (30.0%)" in _one_error_line(done.stderr)
    assert (tmp_path / "o.rejects.csv").read_text().count("\n") == 4


@pytest.mark.parametrize(
    "args",
    [["--shard-index", "3", "--shard-count", "3"], ["--chunk-rows", "0"], ["--engine", "v2-rest"]],
)
def test_usage_mistakes_exit_2(gbm_bundle: Path, tmp_path: Path, args: list[str]) -> None:
    done = batch(
        "--model_dir", gbm_bundle, "--input", tmp_path / "i.csv", "--output", tmp_path / "o.csv", *args
    )
    assert done.returncode == 2
    assert "error:" in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "PREDICTOR_BATCH_LOG_FORMAT",
            "xml",
            "error: PREDICTOR_BATCH_LOG_FORMAT='xml': input should be 'json' or 'text'",
        ),
        (
            "PREDICTOR_BATCH_CHUNK_ROWS",
            "abc",
            "error: PREDICTOR_BATCH_CHUNK_ROWS='abc': input should be a valid integer",
        ),
        (
            "PREDICTOR_BATCH_CHUNKROWS",
            "5",
            "error: unknown variable PREDICTOR_BATCH_CHUNKROWS (did you mean PREDICTOR_BATCH_CHUNK_ROWS?)",
        ),
    ],
)
def test_bad_variables_exit_2_naming_them(
    gbm_bundle: Path, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    done = batch(
        "--model_dir", gbm_bundle, "--input", tmp_path / "i.csv", "--output", tmp_path / "o.csv",
        env={variable: value},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert _one_error_line(done.stderr).startswith(message)


def test_json_logs_in_a_cluster(gbm_bundle: Path, tmp_path: Path) -> None:
    """PREDICTOR_BATCH_LOG_FORMAT=json (the chart's Job): every stderr line one JSON object."""
    cols = columns(gbm_bundle, 20)
    done = batch(
        "--model_dir", gbm_bundle, "--input", write(tmp_path / "i.csv", cols), "--output", tmp_path / "o.csv",
        env={"PREDICTOR_BATCH_LOG_FORMAT": "json", "PREDICTOR_BATCH_PROGRESS": "never"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines and all(line["component"] == "batch" for line in lines)
    assert any(line["message"].startswith("scored 20 and rejected 0 of 20 records") for line in lines), lines


def test_help_lists_every_variable() -> None:
    done = batch("--help")
    assert done.returncode == 0
    for name in (
        "PREDICTOR_BATCH_LOG_FORMAT [text]",
        "PREDICTOR_BATCH_CHUNK_ROWS [10000]",
        "JOB_COMPLETION_INDEX [None]",
    ):
        assert name in done.stdout, name
