"""``make bench``: our predictor against a naive KServe predictor and raw onnxruntime, in one run.

For 1-row and 32-row requests at concurrency 1, 8 and 32, over REST (wrk, a load generator
in C) and gRPC (a grpc.aio generator): requests/s, rows/s, p50/p99 latency and the server's
CPU time per request, for both servers; the ratios ours/naive; and ours as a share of raw
in-process onnxruntime rows/s. Both servers run pinned to core 0 and the load generators on
core 1 (taskset); each configuration runs naive then ours back to back, so a busy machine
slows both alike. CPU per request (read from /proc) is the steadier number on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from support import REPO, ServerProcess, free_port  # noqa: E402

MODEL = "bench"


def pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def raw_onnxruntime(model_path: Path, rows: int, seconds: float) -> float:
    """Rows/s of session.run in-process, one thread: the ceiling no server can beat."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), sess_options=options)
    x = np.random.default_rng(0).uniform(1, 5, size=(rows, 10)).astype(np.float32)
    n, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        session.run(None, {"input": x})
        n += 1
    return n * rows / (time.perf_counter() - start)


def wrk(url: str, rows: int, concurrency: int, seconds: float, workdir: Path) -> dict[str, float]:
    x = np.random.default_rng(0).uniform(1, 5, size=(rows, 10)).round(3).tolist()
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [rows, 10], "data": x}]})
    script = workdir / f"post-{rows}.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body}]]\n'
    )
    out = subprocess.run(
        [
            *pin(1),
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def grpc_load(url: str, rows: int, concurrency: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [
            *pin(1),
            sys.executable,
            str(HERE / "grpc_load.py"),
            url,
            MODEL,
            str(rows),
            str(concurrency),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    if pin(0):  # every thread of the server on core 0
        subprocess.run(["taskset", "-acp", "0", str(proc.proc.pid)], check=True, capture_output=True)
    return proc, f"http://127.0.0.1:{http}/v2/models/{MODEL}/infer", f"127.0.0.1:{grpc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rows", default="1,32")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "predictor.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk); `make bench` installs it", file=sys.stderr)
        return 2
    rows_list = [int(r) for r in args.rows.split(",")]
    conc_list = [int(c) for c in args.concurrency.split(",")]
    raw = {rows: raw_onnxruntime(args.bundle / "model.onnx", rows, 2.0) for rows in rows_list}
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        servers = {kind: serve(kind, args.bundle, workdir) for kind in ("naive", "ours")}
        try:
            for proto in ("rest", "grpc"):
                for rows in rows_list:
                    for conc in conc_list:
                        key = f"{proto}/{rows}/{conc}"
                        for kind, (proc, rest_url, grpc_url) in servers.items():
                            assert proc.proc is not None
                            cpu0 = cpu_seconds(proc.proc.pid)
                            if proto == "rest":
                                r = wrk(rest_url, rows, conc, args.seconds, workdir)
                                seconds = max(1, round(args.seconds))
                            else:
                                r = grpc_load(grpc_url, rows, conc, args.seconds)
                                seconds = args.seconds
                            served = max(r["rps"] * seconds, 1.0)
                            r["cpu_us"] = (cpu_seconds(proc.proc.pid) - cpu0) / served * 1e6
                            results.setdefault(key, {})[kind] = r
                            print(
                                f"  {kind:5} {key:12} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                                f"p99 {r['p99_ms']:7.2f} ms  cpu {r['cpu_us']:6.0f} us/req  "
                                f"errors {r['errors']}",
                                flush=True,
                            )
        finally:
            for proc, _, _ in servers.values():
                proc.stop()

    print()
    print(
        "protocol rows conc | naive req/s | ours req/s | ours/naive | naive/ours CPU | ours rows/s | "
        "raw ort rows/s | ours/raw | ours p50 ms | ours p99 ms | naive p99 ms"
    )
    ratios, cpu_ratios = [], []
    for key, r in results.items():
        proto, rows, conc = key.split("/")
        ours, naive = r["ours"], r["naive"]
        ratio = ours["rps"] / naive["rps"] if naive["rps"] else float("nan")
        cpu_ratio = naive["cpu_us"] / ours["cpu_us"] if ours["cpu_us"] else float("nan")
        ratios.append(ratio)
        cpu_ratios.append(cpu_ratio)
        rows_s = ours["rps"] * int(rows)
        print(
            f"{proto:8} {rows:>4} {conc:>4} | {naive['rps']:11.0f} | {ours['rps']:10.0f} | {ratio:9.2f}x | "
            f"{cpu_ratio:13.2f}x | {rows_s:11.0f} | {raw[int(rows)]:14.0f} | "
            f"{rows_s / raw[int(rows)]:7.1%} | "
            f"{ours['p50_ms']:11.2f} | {ours['p99_ms']:11.2f} | {naive['p99_ms']:12.2f}"
        )
    geo = float(np.exp(np.mean(np.log(ratios))))
    geo_cpu = float(np.exp(np.mean(np.log(cpu_ratios))))
    print(
        f"\ngeometric means: ours/naive throughput {geo:.2f}x, naive/ours CPU per request {geo_cpu:.2f}x "
        "(target: >= 2x)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "raw_onnxruntime_rows_per_s": raw,
        "results": results,
        "geomean_throughput_ratio": geo,
        "geomean_cpu_ratio": geo_cpu,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
