"""Helpers for the batch tests: record files in every format, the CLI as a real process, the truth."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from serving_common import Bundle
from support import REPO


def columns(bundle: Path, n: int, notes: int = 0) -> dict[str, Any]:
    """``n`` raw records (the bundle's reference rows, decoded, repeated) as columns, with an id."""
    b = Bundle.open(bundle)
    spec, ref = b.spec(), b.reference()
    m = ref[np.arange(n) % len(ref)]
    out: dict[str, Any] = {"pid": [f"p{i}" for i in range(n)]}
    for j, f in enumerate(spec.features):
        if f.type == "categorical":
            assert f.categories is not None
            out[f.name] = list(np.asarray(f.categories, dtype=object)[m[:, j].astype(int)])
        else:
            out[f.name] = [float(v) for v in m[:, j].astype(np.float64)]
    if notes:
        out["notes"] = ["x" * notes] * n
    return out


def records(cols: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(cols)
    return [dict(zip(names, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def write(path: Path, cols: dict[str, Any]) -> Path:
    """Write the columns as CSV, JSON Lines or Parquet (by the file's extension)."""
    if path.suffix == ".jsonl":
        with path.open("w") as fh:
            for record in records(cols):
                fh.write(json.dumps(record) + "\n")
    elif path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(cols)
            out.writerows(zip(*(["" if v is None else v for v in c] for c in cols.values()), strict=True))
    else:
        pq.write_table(pa.table(cols), path, row_group_size=7_000)
    return path


def batch(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``python -m predictor.batch ARGS`` as a real process; its exit code, stdout and stderr."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "predictor.batch", *map(str, args)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read(path: Path) -> pa.Table:
    if path.suffix == ".jsonl":
        with path.open() as fh:
            rows = [json.loads(line) for line in fh]
        return pa.Table.from_pylist(rows)
    if path.suffix == ".csv":
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"id": pa.string()}))
    return pq.read_table(path)


def truth(bundle: Path, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of raw onnxruntime on ``matrix``, one thread as the batch engine runs it.

    (A tree ensemble's sums are ordered by thread: other thread counts differ in the last bit.)
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(Bundle.open(bundle).model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    labels, probabilities = session.run(["label", "probabilities"], {"input": matrix})
    return np.asarray(labels), np.asarray(probabilities)
