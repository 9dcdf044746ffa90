"""Memory is bounded by the chunk size, not the file: measured peak RSS on a 100k-row file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from batch_files import columns, write
from support import REPO

MIB = 1 << 20
CHUNK_ROWS = 2_000
NOTE_BYTES = 800
FIXED = 40 * MIB
"""Allowance independent of the chunk: onnxruntime's arena, pyarrow and numpy working buffers."""


def test_peak_rss_on_a_100k_row_file_is_bounded_by_the_chunk_size(gbm_bundle: Path, tmp_path: Path) -> None:
    # 100k records with a wide column the model ignores: ~85 MB of CSV, read 2000 records at a time
    cols = columns(gbm_bundle, 100_000, notes=NOTE_BYTES)
    src = write(tmp_path / "records.csv", cols)
    warm = write(tmp_path / "warm.csv", columns(gbm_bundle, 10, notes=NOTE_BYTES))
    size = src.stat().st_size
    assert size > 80 * MIB
    row_bytes = size // 100_000
    warm_args = [
        "--model_dir",
        str(gbm_bundle),
        "--input",
        str(warm),
        "--output",
        str(tmp_path / "w.csv"),
        "--progress",
        "never",
    ]
    args = [
        "--model_dir",
        str(gbm_bundle),
        "--input",
        str(src),
        "--output",
        str(tmp_path / "o.csv"),
        "--id-column",
        "pid",
        "--chunk-rows",
        str(CHUNK_ROWS),
        "--progress",
        "never",
    ]
    done = subprocess.run(
        [sys.executable, "tests/batch/rss_probe.py", json.dumps(warm_args), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout.splitlines()[-1])
    assert measured["code"] == 0
    growth = measured["peak"] - measured["baseline"]
    # two chunks in flight (one scored, one read), each held as raw lines, an Arrow table and columns:
    # budget 8x the raw bytes of a chunk, plus the fixed allowance
    bound = FIXED + 2 * 8 * CHUNK_ROWS * row_bytes
    print(f"peak RSS growth {growth / MIB:.1f} MiB, bound {bound / MIB:.1f} MiB, file {size / MIB:.0f} MiB")
    assert growth < bound
    assert bound < size  # the bound would not hold a file's worth of records
