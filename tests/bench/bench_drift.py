"""``make bench``: ingest rate of the real drift detector (events/s acknowledged, rows/s judged).

Starts ``.venv-drift/bin/python -m drift_detector`` on a loopback port (the bundle given, or a
synthetic one), posts payload-logger CloudEvents in binary mode (as KServe's agent does) with wrk for
``--seconds`` at each ``--concurrency``, and prints events/s and p50/p99 of the 200
acknowledgement, then the rate at which the detector judged what it accepted (rows/s, windows
tested, events dropped by a full queue).
The detector runs on core 0 and the load generator on core 1 when taskset is available.
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

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "drift_detector")]
from drift_population import write_bundle  # noqa: E402
from serving_common import Bundle  # noqa: E402
from serving_common.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, SOURCE_PREFIX  # noqa: E402
from support import VENV_DRIFT_PYTHON, ServerProcess, free_port  # noqa: E402


def bodies(bundle: Path, rows: int) -> tuple[bytes, bytes]:
    """A V2 request tensor (reference rows, resampled) and a V2 response, as the predictor logs them."""
    reference = Bundle(root=bundle, model_path=bundle / "model.onnx").reference()
    rng = np.random.default_rng(0)
    x = reference[rng.integers(0, len(reference), rows)]
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.reshape(-1).tolist()}
    p = rng.uniform(0, 1, rows)
    probabilities = {
        "name": "probabilities",
        "shape": [rows, 2],
        "datatype": "FP32",
        "data": np.column_stack([1 - p, p]).reshape(-1).tolist(),
    }
    return json.dumps({"inputs": [tensor]}).encode(), json.dumps({"outputs": [probabilities]}).encode()


LUA = """
local n = 0
local request_body = [[%s]]
local response_body = [[%s]]
request = function()
  n = n + 1
  local pair = math.floor(n / 2)
  local is_response = n %% 2 == 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["ce-specversion"] = "1.0",
    ["ce-id"] = "bench-" .. pair,
    ["ce-type"] = is_response and "%s" or "%s",
    ["ce-source"] = "%s",
    ["ce-inferenceservicename"] = (pair %% 10 == 0) and "bench-canary" or "bench",
    ["ce-namespace"] = "bench",
    ["ce-component"] = "predictor",
    ["ce-endpoint"] = "",
  }
  return wrk.format("POST", "/", headers, is_response and response_body or request_body)
end
"""


def wrk(
    url: str, concurrency: int, seconds: int, request: bytes, response: bytes, workdir: Path
) -> dict[str, float]:
    """Events/s, p50/p99 of the acknowledgement (ms) and non-2xx answers, from wrk."""
    script = workdir / "events.lua"
    script.write_text(LUA % (request.decode(), response.decode(), RESPONSE_TYPE, REQUEST_TYPE, SOURCE_PREFIX))
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    out = subprocess.run(
        [*pin, "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else float("nan")

    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "events": float(total.group(1)) if total else float("nan"),
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def judged(base: str, timeout: float) -> dict[str, float]:
    """Wait until the detection queue is idle; rows and windows judged (bounded)."""
    deadline = time.monotonic() + timeout
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/status", timeout=10).json()
        if status["queue"]["idle"]:  # type: ignore[index]
            break
        time.sleep(0.05)
    streams = status.get("streams", [])
    assert isinstance(streams, list)
    return {
        "rows": float(sum(s["rows_seen"]["features"] for s in streams)),
        "windows": float(
            sum(s["windows_evaluated"]["features"] + s["windows_evaluated"]["prediction"] for s in streams)
        ),
    }


def dropped(base: str) -> float:
    total = 0.0
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith("drift_events_dropped_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: a synthetic one)")
    parser.add_argument("--seconds", type=int, default=5, help="load duration per concurrency")
    parser.add_argument("--rows", type=int, default=8, help="rows per request event")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--backend", choices=["alibi", "scipy"], default="alibi")
    args = parser.parse_args()
    for need, hint in (
        (VENV_DRIFT_PYTHON.exists(), "run `make install`"),
        (shutil.which("wrk"), "apt-get install wrk"),
    ):
        if not need:
            print(f"bench_drift needs {hint}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bundle = args.bundle or write_bundle(workdir / "bundle")
        request, response = bodies(bundle, args.rows)
        port = free_port()
        server = ServerProcess(
            [
                "-m",
                "drift_detector",
                "--model_dir",
                str(bundle),
                "--http_port",
                str(port),
                "--host",
                "127.0.0.1",
            ],
            ready_url=f"http://127.0.0.1:{port}/ready",
            python=VENV_DRIFT_PYTHON,
            env={
                "DRIFT_WINDOW_SIZE": str(args.window),
                "DRIFT_BACKEND": args.backend,
                "DRIFT_LOG_LEVEL": "ERROR",
                "DRIFT_QUEUE_SIZE": "1000000",
            },
            log_path=workdir / "drift.log",
        )
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            server.args = ["taskset", "-c", "0", *server.args]
        base = f"http://127.0.0.1:{port}"
        with server:
            print(
                f"drift detector ({args.backend} backend), windows of {args.window} rows, "
                f"{args.rows} rows per request event; events alternate request/response"
            )
            print(
                f"{'concurrency':>11} {'events':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'non-2xx':>7} {'judged rows/s':>13} {'windows':>7} {'dropped':>7}"
            )
            for concurrency in args.concurrency:
                before = judged(base, 60)
                started = time.perf_counter()
                load = wrk(base + "/", concurrency, args.seconds, request, response, workdir)
                after = judged(base, 300)
                done = time.perf_counter() - started
                print(
                    f"{concurrency:>11} {load['events']:>7.0f} {load['rps']:>9.0f} {load['p50_ms']:>7.2f} "
                    f"{load['p99_ms']:>7.2f} {load['errors']:>7.0f} "
                    f"{(after['rows'] - before['rows']) / done:>13.0f} "
                    f"{after['windows'] - before['windows']:>7.0f} {dropped(base):>7.0f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
