"""``make demo``'s last step: the analysis the rollout CLI would act on, on real local metrics.

Serves the stable (gbm) and canary (mlp) bundles with real predictor processes, has a real
Prometheus scrape both every second (static label ``inferenceservice`` = stable / canary, as the chart's
PodMonitor labels pods with their InferenceService), sends traffic split like a VirtualService at
canary 20%, then runs ``rollout analyze``: both sides' request rate, error rate, p50/p99, drift
side by side, and the verdict ``rollout run`` would reach. Every process it starts is stopped by PID.

    .venv/bin/python tests/tools/rollout_demo.py --bundles .bundles [--canary-error-rate 0.2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import MODEL, REPO, ServerProcess, free_port, predictor_process


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or str(REPO / ".tools" / "bin" / "prometheus")
    if not os.access(found, os.X_OK):
        raise SystemExit(
            "prometheus not found on PATH nor in .tools/bin (make tools, or apt-get install prometheus)"
        )
    return found


@contextlib.contextmanager
def stack(bundles: Path, logs: Path, canary_error_rate: float) -> Iterator[tuple[dict[str, str], str]]:
    """Predictors ``stable`` and ``canary`` and a Prometheus scraping them: ({name: url}, prometheus url)."""
    procs: list[ServerProcess] = []
    try:
        urls: dict[str, str] = {}
        for name, bundle, env in (
            ("stable", bundles / "gbm", None),
            ("canary", bundles / "mlp", {"PREDICTOR_FAULT_ERROR_RATE": str(canary_error_rate)}),
        ):
            predictor = predictor_process(bundle, logs / f"{name}.log", env=env)
            procs.append(predictor.process.start(wait=False))
            urls[name] = predictor.http
        for proc in procs:
            proc.wait_ready()
        config = logs / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
            "scrape_configs:\n  - job_name: predictors\n    static_configs:\n"
            + "".join(
                f"      - targets: ['{url.removeprefix('http://')}']\n"
                f"        labels: {{inferenceservice: {name}}}\n"
                for name, url in urls.items()
            )
        )
        port = free_port()
        prom = ServerProcess(
            [
                f"--config.file={config}",
                f"--storage.tsdb.path={logs / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            f"http://127.0.0.1:{port}/-/ready",
            python=prometheus_binary(),
            log_path=logs / "prometheus.log",
        )
        procs.append(prom.start())
        yield urls, f"http://127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            proc.stop()


def send_traffic(
    urls: dict[str, str], rows: np.ndarray, seconds: float, canary_weight: int
) -> dict[str, int]:
    """V2 requests for ``seconds``, ``canary_weight`` of every 100 to the canary (as Istio would)."""
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        ]
    }
    sent = {"stable": 0, "canary": 0}
    deadline, i = time.monotonic() + seconds, 0
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            side = "canary" if i % 100 < canary_weight else "stable"
            i += 1
            with contextlib.suppress(httpx.HTTPError):
                client.post(f"{urls[side]}/v2/models/{MODEL}/infer", json=body)
                sent[side] += 1
            time.sleep(0.01)
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, default=REPO / ".bundles")
    parser.add_argument("--seconds", type=float, default=15.0, help="traffic duration")
    parser.add_argument("--canary-weight", type=int, default=20, help="canary share of the traffic, 0-100")
    parser.add_argument(
        "--canary-error-rate",
        type=float,
        default=0.0,
        help="PREDICTOR_FAULT_ERROR_RATE for the canary (e.g. 0.2 to watch the verdict fail)",
    )
    args = parser.parse_args()
    rows = np.load(args.bundles / "gbm" / "reference.npy")[:4].astype(np.float32)
    with (
        tempfile.TemporaryDirectory(prefix="rollout-demo-") as tmp,
        stack(args.bundles, Path(tmp), args.canary_error_rate) as (urls, prometheus),
    ):
        print(f"stable {urls['stable']}, canary {urls['canary']}, Prometheus {prometheus} (scrape every 1 s)")
        # a few requests to each side first, so every counter series exists before the window
        send_traffic(urls, rows, 1.0, 50)
        sent = send_traffic(urls, rows, args.seconds, args.canary_weight)
        print(
            f"sent {sent['stable']} requests to stable, {sent['canary']} to canary "
            f"(split {100 - args.canary_weight}/{args.canary_weight}); waiting for two scrapes"
        )
        time.sleep(2.5)
        window = f"{int(args.seconds) + 5}s"
        cmd = [
            sys.executable,
            "-m",
            "rollout",
            "analyze",
            "--prometheus-url",
            prometheus,
            "--stable",
            "stable",
            "--canary",
            "canary",
            "--window",
            window,
            "--min-requests",
            "10",
        ]
        print("$ rollout " + " ".join(cmd[3:]), flush=True)
        done = subprocess.run(cmd, cwd=REPO, timeout=60)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
