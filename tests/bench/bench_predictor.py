"""``make bench``: our predictor against a naive KServe predictor and raw onnxruntime, in one run.

For 1-row and 32-row requests at concurrency 1, 8 and 32, over REST (wrk, a load generator in
C, the body read from a file) and gRPC (``grpc_load.py``, a grpc.aio generator): requests/s,
rows/s, p50/p99 latency and the server's CPU time per request, for both servers; the ratios
ours/naive; and ours as a share of raw in-process onnxruntime rows/s. Both servers run pinned to
core 0 and the load generators on core 1 (taskset); each configuration runs naive then ours back
to back, so a busy machine slows both alike. CPU per request (read from /proc) is the steadier
number on a shared machine.

Honesty: every target (server x protocol x rows) answers once and must equal onnxruntime on the
same rows (labels exactly, probabilities to 1e-5) before it is timed; a timed run with a single
non-2xx / non-OK answer, socket error or timeout is printed as an ``ERROR`` line and the bench
exits 1.

    .venv/bin/python tests/bench/bench_predictor.py --bundle .bundles/gbm [--duration 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import grpc_load  # noqa: E402
import loadgen  # noqa: E402
from support import REPO, ServerProcess, free_port  # noqa: E402

MODEL = "bench"
KINDS = ("naive", "ours")


def session(model_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), sess_options=options)


def raw_onnxruntime(sess: ort.InferenceSession, rows: int, seconds: float) -> float:
    """Rows/s of session.run in-process, one thread: the ceiling no server can beat."""
    x = loadgen.sample_rows(rows)
    n, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        sess.run(None, {"input": x})
        n += 1
    return n * rows / (time.perf_counter() - start)


def rest_body(rows: int) -> bytes:
    x = loadgen.json_rows(loadgen.sample_rows(rows))
    return json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [rows, 10], "data": x}]}
    ).encode()


def rest_outputs(url: str, body: bytes) -> dict[str, np.ndarray]:
    r = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
    if r.status_code != 200:
        raise loadgen.SanityError(f"status {r.status_code}: {r.text[:300]}")
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in r.json()["outputs"]}


def sanity_check(sess: ort.InferenceSession, proto: str, rest_url: str, grpc_url: str, rows: int) -> None:
    """The target's label and probabilities equal onnxruntime's on the rows the load will send."""
    x = loadgen.sample_rows(rows)
    label, proba = sess.run(None, {"input": x})
    if proto == "rest":
        got = rest_outputs(rest_url, rest_body(rows))
    else:
        got = grpc_load.infer_once(grpc_url, MODEL, x)
    missing = {"label", "probabilities"} - set(got)
    if missing:
        raise loadgen.SanityError(f"outputs {sorted(got)} lack {sorted(missing)}")
    loadgen.check_close("label", got["label"].reshape(-1), label.reshape(-1), atol=0)
    loadgen.check_close("probabilities", got["probabilities"], proba)


def grpc_run(url: str, rows: int, concurrency: int, seconds: float) -> loadgen.Run:
    cmd = [*loadgen.pin(loadgen.LOAD_CORE), sys.executable, str(HERE / "grpc_load.py"), url, MODEL]
    proc = subprocess.run(
        [*cmd, str(rows), str(concurrency), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if proc.returncode != 0:
        raise loadgen.WrkError(f"grpc_load exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return loadgen.Run.from_json(json.loads(proc.stdout.strip().splitlines()[-1]))


def serve(kind: str, bundle: Path, workdir: Path) -> tuple[ServerProcess, str, str]:
    http, grpc = free_port(), free_port()
    if kind == "ours":
        args = ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(bundle)]
    else:
        args = [
            str(HERE / "naive_predictor.py"),
            "--model_name",
            MODEL,
            "--model_path",
            str(bundle / "model.onnx"),
        ]
    proc = ServerProcess(
        [*args, "--http_port", str(http), "--grpc_port", str(grpc)],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        log_path=workdir / f"{kind}.log",
    )
    proc.start()
    assert proc.proc is not None
    loadgen.pin_process(proc.proc.pid, loadgen.SERVER_CORE)
    return proc, f"http://127.0.0.1:{http}/v2/models/{MODEL}/infer", f"127.0.0.1:{grpc}"


def print_table(results: dict[str, dict[str, loadgen.Run]], raw: dict[int, float]) -> dict[str, float]:
    print(
        "\nprotocol rows conc | naive req/s | ours req/s | ours/naive | naive/ours CPU | ours rows/s | "
        "raw ort rows/s | ours/raw | ours p50 ms | ours p99 ms | naive p99 ms"
    )
    ratios, cpu_ratios = [], []
    for key, r in results.items():
        proto, rows, conc = key.split("/")
        if set(r) != set(KINDS):
            print(f"{proto:8} {rows:>4} {conc:>4} | (not measured: see the ERROR lines)")
            continue
        ours, naive = r["ours"], r["naive"]
        ratio = ours.rps / naive.rps if naive.rps else float("nan")
        cpu_ratio = naive.cpu_us["server"] / ours.cpu_us["server"] if ours.cpu_us["server"] else float("nan")
        ratios.append(ratio)
        cpu_ratios.append(cpu_ratio)
        rows_s = ours.rps * int(rows)
        print(
            f"{proto:8} {rows:>4} {conc:>4} | {naive.rps:11.0f} | {ours.rps:10.0f} | {ratio:9.2f}x | "
            f"{cpu_ratio:13.2f}x | {rows_s:11.0f} | {raw[int(rows)]:14.0f} | "
            f"{rows_s / raw[int(rows)]:7.1%} | "
            f"{ours.p50_ms:11.2f} | {ours.p99_ms:11.2f} | {naive.p99_ms:12.2f}"
        )
    geo = float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")
    geo_cpu = float(np.exp(np.mean(np.log(cpu_ratios)))) if cpu_ratios else float("nan")
    print(
        f"\ngeometric means: ours/naive throughput {geo:.2f}x, naive/ours CPU per request {geo_cpu:.2f}x "
        f"(target: >= 2x) -> {'ok' if geo >= 2 else 'MISS'}"
    )
    return {"geomean_throughput_ratio": geo, "geomean_cpu_ratio": geo_cpu}


def timed(proto: str, server: tuple[ServerProcess, str, str], rows: int, conc: int, args: Any) -> loadgen.Run:
    """One timed run against one server, its CPU per request charged (raises if the tool failed)."""
    proc, rest_url, grpc_url = server
    assert proc.proc is not None
    meter = loadgen.CpuMeter({"server": proc.proc.pid})
    if proto == "rest":
        run = loadgen.wrk(
            rest_url, rest_body(rows), concurrency=conc, seconds=args.duration, workdir=args.workdir
        )
    else:
        run = grpc_run(grpc_url, rows, conc, args.duration)
    run.charge(meter.spent())
    return run


def measure(args: Any, sess: ort.InferenceSession, failures: list[str]) -> dict[str, dict[str, loadgen.Run]]:
    results: dict[str, dict[str, loadgen.Run]] = {}
    servers: dict[str, tuple[ServerProcess, str, str]] = {}
    try:
        for kind in KINDS:
            servers[kind] = serve(kind, args.bundle, args.workdir)
        for proto in args.protocols.split(","):
            for rows in args.rows:
                checked = {}
                for kind, (_, rest_url, grpc_url) in servers.items():
                    try:
                        sanity_check(sess, proto, rest_url, grpc_url, rows)
                        checked[kind] = servers[kind]
                    except Exception as e:  # any failure to answer correctly disqualifies the target
                        failures.append(f"{kind} {proto} {rows} rows: sanity check failed: {e}")
                for conc in args.concurrency:
                    key = f"{proto}/{rows}/{conc}"
                    for kind, server in checked.items():
                        try:
                            r = timed(proto, server, rows, conc, args)
                        except (loadgen.WrkError, subprocess.TimeoutExpired) as e:
                            failures.append(f"{kind} {key}: {e}")
                            continue
                        failure = r.failure()
                        if failure:
                            failures.append(f"{kind} {key}: {failure}")
                        else:
                            results.setdefault(key, {})[kind] = r
                        print(
                            f"  {kind:5} {key:12} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  "
                            f"p99 {r.p99_ms:7.2f} ms  cpu {r.cpu_us['server']:6.0f} us/req  "
                            f"{'ok' if not failure else 'ERROR ' + failure}",
                            flush=True,
                        )
    finally:
        for proc, _, _ in servers.values():
            proc.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, default=REPO / ".bundles" / "gbm")
    parser.add_argument("--duration", "--seconds", type=float, default=3.0, help="seconds per timed run")
    parser.add_argument("--rows", type=_ints, default=[1, 32], help="rows per request, comma-separated")
    parser.add_argument("--concurrency", type=_ints, default=[1, 8, 32], help="comma-separated")
    parser.add_argument("--protocols", default="rest,grpc", help="comma-separated: rest, grpc")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "predictor.json")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("ERROR predictor bench: wrk is not installed (apt-get install wrk); `make bench` installs it")
        return 2
    sess = session(args.bundle / "model.onnx")
    raw = {rows: raw_onnxruntime(sess, rows, min(2.0, args.duration)) for rows in args.rows}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-predictor-") as tmp:
        args.workdir = Path(tmp)
        results = measure(args, sess, failures)

    summary: dict[str, Any] = print_table(results, raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary.update(
        raw_onnxruntime_rows_per_s=raw,
        results={k: {kind: run.to_json() for kind, run in v.items()} for k, v in results.items()},
        failures=failures,
    )
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"results written to {args.out}")
    return loadgen.report("predictor bench", failures)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


if __name__ == "__main__":
    sys.exit(main())
