"""Scoring files in-process: predictions equal onnxruntime, bad records land in the rejects file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from batch_files import batch, columns, read, records, truth, write
from serving_common import FeatureSpec


def _f32(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64).astype(np.float32)


def test_a_100k_row_csv_scored_in_process_equals_onnxruntime(
    gbm_bundle: Path, spec: FeatureSpec, tmp_path: Path
) -> None:
    cols = columns(gbm_bundle, 100_000)
    src = write(tmp_path / "records.csv", cols)
    out = tmp_path / "scores.csv"
    done = batch("--model_dir", gbm_bundle, "--input", src, "--output", out, "--id-column", "pid")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (100_000, 100_000, 0)
    labels, probabilities = truth(gbm_bundle, spec.vectorise(records({n: cols[n] for n in spec.names})))
    table = read(out)
    assert table.column_names == [
        "row",
        "id",
        "label",
        "probability",
        "p_low_risk",
        "p_high_risk",
        "model_version",
    ]
    assert table.column("row").to_pylist() == list(range(100_000))
    assert table.column("id").to_pylist() == cols["pid"]
    assert table.column("label").to_pylist() == [spec.classes[i] for i in labels]
    # float32 written as its shortest text: read back as float32 it is the very same number
    np.testing.assert_array_equal(_f32(table, "p_high_risk"), probabilities[:, 1])
    np.testing.assert_array_equal(_f32(table, "p_low_risk"), probabilities[:, 0])
    np.testing.assert_array_equal(_f32(table, "probability"), probabilities[np.arange(100_000), labels])
    assert set(table.column("model_version").to_pylist()) == {"gbm-1"}
    assert read(tmp_path / "scores.rejects.csv").num_rows == 0
    assert not (tmp_path / "scores.csv.parts").exists()


BAD = {
    3: ("age", "abc", "field 'age': has type str; expected a number in [0, 120] years"),
    10: ("sex", "other", "field 'sex': unknown category 'other'; expected one of 'female', 'male'"),
    11: ("bmi", None, "field 'bmi': is missing; expected a number in [10, 80] kg/m^2"),
    2999: ("bp", 999.0, "field 'bp': value 999.0 is out of range; expected a number in [30, 250] mmHg"),
}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_bad_records_are_rejected_with_reasons_and_every_good_record_is_scored(
    gbm_bundle: Path, spec: FeatureSpec, tmp_path: Path, fmt: str
) -> None:
    cols = columns(gbm_bundle, 3000)
    good_matrix = spec.vectorise(records({n: cols[n] for n in spec.names}))
    for row, (field, value, _) in BAD.items():
        if fmt == "parquet" and isinstance(value, str) and field == "age":
            value = None  # a Parquet number column cannot hold text
        cols[field][row] = value
    src = write(tmp_path / f"records.{fmt}", cols)
    out = tmp_path / f"scores.{fmt}"
    done = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        src,
        "--output",
        out,
        "--id-column",
        "pid",
        "--chunk-rows",
        "700",
    )
    assert done.returncode == 0, done.stderr
    rejects = read(tmp_path / f"scores.rejects.{fmt}")
    assert rejects.column("row").to_pylist() == sorted(BAD)
    assert rejects.column("id").to_pylist() == [f"p{r}" for r in sorted(BAD)]
    reasons = rejects.column("reason").to_pylist()
    for (row, (_field, _value, reason)), got in zip(sorted(BAD.items()), reasons, strict=True):
        if fmt == "parquet" and row == 3:
            reason = "field 'age': is missing; expected a number in [0, 120] years"
        assert got == reason, row
        assert json.loads(rejects.column("record").to_pylist()[sorted(BAD).index(row)])["sex"] in (
            "female",
            "male",
            "other",
        )
    table = read(out)
    good = [r for r in range(3000) if r not in BAD]
    assert table.column("row").to_pylist() == good
    labels, probabilities = truth(gbm_bundle, good_matrix[good])
    np.testing.assert_array_equal(_f32(table, "p_high_risk"), probabilities[:, 1])
    assert table.column("label").to_pylist() == [spec.classes[i] for i in labels]
    summary = json.loads(done.stdout)
    assert (summary["scored"], summary["rejected"]) == (3000 - len(BAD), len(BAD))


def test_jsonl_lines_that_are_not_records_are_rejected_not_fatal(gbm_bundle: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "records.jsonl", columns(gbm_bundle, 20))
    lines = src.read_text().splitlines()
    lines[4] = "{not json"
    lines[6] = "[1, 2]"
    src.write_text("\n".join(lines) + "\n\n")
    done = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "o.jsonl")
    assert done.returncode == 0, done.stderr
    rejects = read(tmp_path / "o.rejects.jsonl").to_pylist()
    assert [r["row"] for r in rejects] == [4, 6]
    assert rejects[0]["reason"].startswith("field '*': the line is not valid JSON")
    assert rejects[1]["reason"] == "field '*': is a list; expected an object of features"
    assert read(tmp_path / "o.jsonl").num_rows == 18


def test_progress_is_shown_when_forced_and_silent_when_stderr_is_not_a_terminal(
    gbm_bundle: Path, tmp_path: Path
) -> None:
    src = write(tmp_path / "records.csv", columns(gbm_bundle, 500))
    forced = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        src,
        "--output",
        tmp_path / "a.csv",
        "--chunk-rows",
        "100",
        "--progress",
        "always",
    )
    assert forced.returncode == 0, forced.stderr
    assert "500/500" in forced.stderr and "rows/s" in forced.stderr
    auto = batch("--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "b.csv")
    assert auto.returncode == 0, auto.stderr
    assert "rows/s]" not in auto.stderr and "|" not in auto.stderr
    assert "scored 500 and rejected 0 of 500 records" in auto.stderr


def test_csv_line_endings_blank_lines_and_a_last_line_without_newline(
    gbm_bundle: Path, tmp_path: Path
) -> None:
    src = write(tmp_path / "records.csv", columns(gbm_bundle, 30))
    header, *lines = src.read_bytes().splitlines()
    body = b"\r\n".join([header, *lines[:10], b"", *lines[10:20], b"", b"", *lines[20:]])  # no final newline
    src.write_bytes(body)
    done = batch(
        "--model_dir", gbm_bundle, "--input", src, "--output", tmp_path / "o.csv", "--chunk-rows", "7"
    )
    assert done.returncode == 0, done.stderr
    table = read(tmp_path / "o.csv")
    assert table.column("row").to_pylist() == list(range(30))
    whole = batch(
        "--model_dir",
        gbm_bundle,
        "--input",
        write(tmp_path / "plain.csv", columns(gbm_bundle, 30)),
        "--output",
        tmp_path / "p.csv",
    )
    assert whole.returncode == 0, whole.stderr
    assert table.equals(read(tmp_path / "p.csv"))
