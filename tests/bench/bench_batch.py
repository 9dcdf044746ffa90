"""``make bench``: batch scoring rows/s, file to file, against raw onnxruntime and the online path.

1. In-process (issue 17, target >= 0.5x): ``python -m predictor.batch`` (validation with the feature
   spec, chunked streaming, checkpoints, rejects, the output file) against *raw onnxruntime* doing
   the least a script can do from the same CSV: pyarrow reads the whole file, categories become
   their index, ``session.run`` on ``--batch-rows`` rows at a time (same batch size, one thread
   each), pyarrow writes labels and probabilities. Both run in this process, best of ``--repeat``,
   file to file (reading, counting, writing and joining included). The two outputs must agree
   (labels exactly, probabilities to 1e-6) before anything is timed.
2. Over an InferenceService: a real predictor (``python -m predictor``) scored through the V2 REST
   and gRPC engines (``--batch-rows`` rows per request, ``--concurrency`` in flight), beside the
   online path, one row per gRPC request at concurrency 8 (``grpc_load.py``) for ``--duration`` s.

Any failure (a non-zero exit, an error answer, outputs that disagree) prints ``ERROR`` and exits 1;
a ratio below the target prints ``MISS`` and does not fail. Results: ``bench-results/batch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import grpc_load  # noqa: E402
import loadgen  # noqa: E402
from predictor.batch.cli import main as batch_main  # noqa: E402
from serving_common import Bundle, FeatureSpec  # noqa: E402
from support import ServerProcess, free_port  # noqa: E402

MODEL = "bench"
TARGET = 0.5


def write_records(bundle: Bundle, rows: int, path: Path) -> None:
    spec, reference = bundle.spec(), bundle.reference()
    m = reference[np.arange(rows) % len(reference)]
    cols: dict[str, Any] = {"pid": [f"p{i}" for i in range(rows)]}
    for j, f in enumerate(spec.features):
        if f.type == "categorical":
            assert f.categories is not None
            cols[f.name] = np.asarray(f.categories, dtype=object)[m[:, j].astype(int)]
        else:
            cols[f.name] = m[:, j].astype(np.float64)
    pacsv.write_csv(pa.table(cols), path)


def raw_onnxruntime(model: Path, spec: FeatureSpec, src: Path, out: Path, batch_rows: int) -> None:
    """The least a script does: read all, encode categories, run in batches, write."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    table = pacsv.read_csv(src)
    matrix = np.empty((table.num_rows, spec.n_features), dtype=np.float32)
    for j, f in enumerate(spec.features):
        column = table.column(f.name)
        if f.type == "categorical":
            assert f.categories is not None
            lookup = {c: float(i) for i, c in enumerate(f.categories)}
            matrix[:, j] = [lookup[v] for v in column.to_pylist()]
        else:
            matrix[:, j] = column.to_numpy()
    labels, probabilities = [], []
    for lo in range(0, len(matrix), batch_rows):
        label, proba = session.run(
            ["label", "probabilities"], {spec.input_name: matrix[lo : lo + batch_rows]}
        )
        labels.append(label)
        probabilities.append(proba)
    p = np.concatenate(probabilities)
    pacsv.write_csv(pa.table({"label": np.concatenate(labels), "p_low": p[:, 0], "p_high": p[:, 1]}), out)


def ours(args: list[str]) -> dict[str, Any]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = batch_main(args)
    if code != 0:
        raise loadgen.SanityError(f"python -m predictor.batch {' '.join(args)} exited {code}")
    summary: dict[str, Any] = json.loads(stdout.getvalue().strip().splitlines()[-1])
    return summary


def best_of(repeat: int, run: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def check_same(ours_out: Path, raw_out: Path, classes: tuple[str, ...]) -> None:
    a, b = pacsv.read_csv(ours_out), pacsv.read_csv(raw_out)
    want_labels = [classes[i] for i in b.column("label").to_pylist()]
    if a.column("label").to_pylist() != want_labels:
        raise loadgen.SanityError("labels differ between predictor.batch and raw onnxruntime")
    got = a.column(f"p_{classes[1]}").to_numpy().astype(np.float32)
    loadgen.check_close("probabilities", got, b.column("p_high").to_numpy().astype(np.float32), atol=1e-6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, default=Path(".bundles/gbm"))
    parser.add_argument("--rows", type=int, default=200_000, help="records in the in-process file")
    parser.add_argument(
        "--remote-rows", type=int, default=50_000, help="records scored through the predictor"
    )
    parser.add_argument("--batch-rows", type=int, default=1024)
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of the online-path run")
    parser.add_argument("--no-remote", action="store_true", help="skip the InferenceService part")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parents[2] / "bench-results")
    a = parser.parse_args(argv)
    bundle = Bundle.open(a.bundle)
    spec = bundle.spec()
    failures: list[str] = []
    results: dict[str, Any] = {"rows": a.rows, "batch_rows": a.batch_rows, "chunk_rows": a.chunk_rows}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        src = work / "records.csv"
        write_records(bundle, a.rows, src)
        common = [
            "--model_dir",
            str(a.bundle),
            "--input",
            str(src),
            "--progress",
            "never",
            "--overwrite",
            "--chunk-rows",
            str(a.chunk_rows),
            "--batch-rows",
            str(a.batch_rows),
        ]
        try:
            raw_onnxruntime(bundle.model_path, spec, src, work / "raw.csv", a.batch_rows)
            summary = ours([*common, "--output", str(work / "ours.csv")])
            if (summary["scored"], summary["rejected"]) != (a.rows, 0):
                raise loadgen.SanityError(f"scored {summary['scored']} and rejected {summary['rejected']}")
            check_same(work / "ours.csv", work / "raw.csv", spec.classes)
            raw_s = best_of(
                a.repeat,
                lambda: raw_onnxruntime(bundle.model_path, spec, src, work / "raw.csv", a.batch_rows),
            )
            ours_s = best_of(a.repeat, lambda: ours([*common, "--output", str(work / "ours.csv")]))
        except (loadgen.SanityError, OSError, ValueError) as e:
            failures.append(f"in-process: {e}")
        else:
            ratio = raw_s / ours_s
            results |= {"raw_rows_per_s": a.rows / raw_s, "ours_rows_per_s": a.rows / ours_s, "ratio": ratio}
            print(f"in-process, {a.rows} rows file to file, batch {a.batch_rows}, best of {a.repeat}:")
            print(f"  raw onnxruntime   {a.rows / raw_s:>10,.0f} rows/s  ({raw_s:.2f} s)")
            print(f"  predictor.batch   {a.rows / ours_s:>10,.0f} rows/s  ({ours_s:.2f} s)")
            print(
                f"  {'ok' if ratio >= TARGET else 'MISS'}: predictor.batch / raw onnxruntime = {ratio:.2f}x "
                f"(target >= {TARGET}x)"
            )

        if not a.no_remote:
            failures += remote(a, bundle, work, results)
    a.results.mkdir(exist_ok=True)
    (a.results / "batch.json").write_text(json.dumps(results, indent=1))
    return loadgen.report("batch", failures)


def remote(a: argparse.Namespace, bundle: Bundle, work: Path, results: dict[str, Any]) -> list[str]:
    src = work / "remote.csv"
    write_records(bundle, a.remote_rows, src)
    http, grpc = free_port(), free_port()
    server = ServerProcess(
        [
            "-m",
            "predictor",
            "--model_name",
            MODEL,
            "--model_dir",
            str(a.bundle),
            "--http_port",
            str(http),
            "--grpc_port",
            str(grpc),
        ],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        log_path=work / "predictor.log",
    )
    failures: list[str] = []
    print(
        f"over a predictor process, {a.remote_rows} rows, {a.batch_rows} per request, "
        f"concurrency {a.concurrency}:"
    )
    with server:
        for engine, host in (("v2-rest", f"127.0.0.1:{http}"), ("v2-grpc", f"127.0.0.1:{grpc}")):
            args = [
                "--model_dir",
                str(a.bundle),
                "--input",
                str(src),
                "--output",
                str(work / f"{engine}.csv"),
                "--progress",
                "never",
                "--overwrite",
                "--engine",
                engine,
                "--predictor-host",
                host,
                "--model-name",
                MODEL,
                "--batch-rows",
                str(a.batch_rows),
                "--concurrency",
                str(a.concurrency),
            ]
            try:
                start = time.perf_counter()
                summary = ours(args)
                seconds = time.perf_counter() - start
                if summary["scored"] != a.remote_rows:
                    raise loadgen.SanityError(f"{engine} scored {summary['scored']} of {a.remote_rows}")
            except loadgen.SanityError as e:
                failures.append(f"{engine}: {e}")
                continue
            results[f"{engine}_rows_per_s"] = a.remote_rows / seconds
            print(f"  batch {engine:8} {a.remote_rows / seconds:>10,.0f} rows/s")
        run = asyncio.run(grpc_load.run(f"127.0.0.1:{grpc}", MODEL, 1, 8, a.duration))
        if run.failure():
            failures.append(f"online path: {run.failure()}")
        else:
            results["online_grpc_1row_c8_rows_per_s"] = run.rps
            print(f"  online gRPC, 1 row per request, c8: {run.rps:>10,.0f} rows/s (p99 {run.p99_ms:.1f} ms)")
    return failures


if __name__ == "__main__":
    sys.exit(main())
