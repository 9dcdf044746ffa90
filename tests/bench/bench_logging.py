"""``make bench``: what the payload logger costs the predictor, and whether it keeps up.

1-row V2 REST at concurrency 8 (wrk), the predictor pinned to core 0, the logger's receiver and
wrk on core 1. For logging off, ``binary`` (the agent's one POST per event, the default) and
``batch`` (``PREDICTOR_LOGGER_FORMAT=batch``): requests/s, the predictor's CPU per request, the
ratio on/off (target >= 0.9x), and the logger's events sent / failed / dropped (target: 0
dropped) against the receiver's own count, and the logger's sender-thread CPU per request
(``predictor_payload_logger_cpu_seconds_total``; the hook on the request path adds ~1-2 us).
Receivers: a minimal fast one (this file, ``receive`` subcommand: counts events, answers 200
at once) and the real drift detector (``.venv-drift/bin/python -m drift_detector``; skipped
when that virtualenv is missing). wrk shares core 1 with the receiver, so a busy receiver also
slows the load generator: the CPU ratio is the steadier measure of what logging costs.
Every run checks one answer first and fails on any non-2xx answer; misses print ``MISS``.
Numbers on a shared machine are noisy: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from loadgen import cpu_seconds, pin, wrk  # noqa: E402
from support import VENV_DRIFT_PYTHON, ServerProcess, free_port  # noqa: E402

MODEL = "bench"
ROW = [59, 1, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]
BODY = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 10], "data": ROW}]})
TARGET_RATIO = 0.9


# --- the minimal fast receiver (``bench_logging.py receive PORT``) ------------------------------


class _Sink(asyncio.Protocol):
    """HTTP/1.1 (keep-alive, pipelined) POSTs counted as events; ``GET`` answers the counts."""

    counts = {"posts": 0, "events": 0}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        import orjson

        self.buf += data
        out: list[bytes] = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            if len(self.buf) < end + 4 + length:
                break
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            if head.startswith(b"get"):
                doc = json.dumps(self.counts).encode()
                out.append(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(doc), doc))
                continue
            self.counts["posts"] += 1
            batch = b"\r\ncontent-type: application/cloudevents-batch+json" in head
            self.counts["events"] += len(orjson.loads(body)) if batch else 1
            out.append(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        if out:
            self.transport.write(b"".join(out))


def receive(port: int) -> None:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_Sink, "127.0.0.1", port))
    try:
        loop.run_forever()
    finally:
        server.close()


# --- the benchmark ------------------------------------------------------------------------------


def start_receiver(kind: str, bundle: Path, workdir: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    if kind == "fast":
        proc = ServerProcess(
            [str(Path(__file__).resolve()), "receive", str(port)],
            ready_url=f"http://127.0.0.1:{port}/count",
            log_path=workdir / "fast-receiver.log",
        )
    else:
        proc = ServerProcess(
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
            env={"DRIFT_QUEUE_SIZE": "100000"},
            log_path=workdir / "drift.log",
        )
    proc.start()
    assert proc.proc is not None
    if pin(1):
        subprocess.run(["taskset", "-acp", "1", str(proc.proc.pid)], check=True, capture_output=True)
    return proc, f"http://127.0.0.1:{port}/"


def received(kind: str, url: str) -> float:
    if kind == "fast":
        return float(httpx.get(f"{url}count", timeout=10).json()["events"])
    text = httpx.get(f"{url}metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r"^drift_events_received_total\{[^}]*\} ([\d.e+]+)$", text, re.M))


def logger_counts(http: str) -> dict[str, float]:
    text = httpx.get(f"{http}/metrics", timeout=10).text
    out = {}
    for outcome in ("sent", "failed", "dropped"):
        m = re.search(
            rf'^predictor_payload_logger_events_total{{[^}}]*outcome="{outcome}"}} ([\d.e+]+)$', text, re.M
        )
        out[outcome] = float(m.group(1)) if m else 0.0
    m = re.search(r"^predictor_payload_logger_pending\{[^}]*\} ([\d.e+]+)$", text, re.M)
    out["pending"] = float(m.group(1)) if m else 0.0
    m = re.search(r"^predictor_payload_logger_cpu_seconds_total\{[^}]*\} ([\d.e+-]+)$", text, re.M)
    out["logger_cpu"] = float(m.group(1)) if m else 0.0
    return out


def run(bundle: Path, fmt: str | None, logger_url: str | None, seconds: int, workdir: Path) -> dict[str, Any]:
    http = free_port()
    args = ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(bundle), "--http_port", str(http)]
    args += ["--grpc_port", str(free_port()), "--inference_service", "bench-logging"]
    if logger_url:
        args += ["--logger_url", logger_url]
    proc = ServerProcess(
        args,
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        env={"PREDICTOR_LOGGER_FORMAT": fmt or "binary"},
        log_path=workdir / f"predictor-{fmt}.log",
    )
    proc.start()
    try:
        assert proc.proc is not None
        if pin(0):
            subprocess.run(["taskset", "-acp", "0", str(proc.proc.pid)], check=True, capture_output=True)
        url = f"http://127.0.0.1:{http}/v2/models/{MODEL}/infer"
        check = httpx.post(url, content=BODY, headers={"content-type": "application/json"}, timeout=10)
        if check.status_code != 200 or len(check.json()["outputs"]) != 2:
            raise SystemExit(f"FAIL: the check request got {check.status_code}: {check.text[:300]}")
        cpu0 = cpu_seconds(proc.proc.pid)
        # loadgen reads the body from a file (never a Lua [[...]] string: JSON's nested arrays hold
        # `]]`) and counts every status; one non-2xx or socket error fails the run
        run = wrk(url, BODY.encode(), concurrency=8, seconds=seconds, workdir=workdir)
        cpu = cpu_seconds(proc.proc.pid) - cpu0
        failure = run.failure()
        if failure:
            raise SystemExit(f"FAIL: {failure} under load")
        rps, total = run.rps, run.requests
        result: dict[str, Any] = {"rps": rps, "cpu_us": cpu / max(total, 1) * 1e6}
        if logger_url:
            deadline = time.monotonic() + 60
            counts = logger_counts(f"http://127.0.0.1:{http}")
            while counts["pending"] and time.monotonic() < deadline:
                time.sleep(0.2)
                counts = logger_counts(f"http://127.0.0.1:{http}")
            result.update(counts)
        return result
    finally:
        proc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("receive", help="run the minimal fast receiver")
    rec.add_argument("port", type=int)
    parser.add_argument("--bundle", type=Path, default=HERE.parent.parent / ".bundles" / "gbm")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--receivers", default="fast,detector")
    parser.add_argument("--formats", default="binary,batch")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.command == "receive":
        receive(args.port)
        return 0
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk); `make bench` installs it", file=sys.stderr)
        return 2
    receivers = [r for r in args.receivers.split(",") if r != "detector" or VENV_DRIFT_PYTHON.exists()]
    formats = args.formats.split(",")
    misses = 0
    print(
        "payload logger: 1-row V2 REST, concurrency 8, predictor on core 0, receiver + wrk on core 1; "
        f"best of {args.rounds} interleaved rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for receiver in receivers:
            best: dict[str, dict[str, Any]] = {}
            lost: dict[str, float] = {}  # events dropped or failed, over every round
            for _ in range(args.rounds):  # interleaved, so a busy machine slows every mode alike
                for fmt in ["off", *formats]:
                    if fmt == "off":
                        r = run(args.bundle, None, None, args.seconds, workdir)
                    else:
                        proc, url = start_receiver(receiver, args.bundle, workdir)
                        try:
                            before = received(receiver, url)
                            r = run(args.bundle, fmt, url, args.seconds, workdir)
                            r["received"] = received(receiver, url) - before
                        finally:
                            proc.stop()
                        lost[fmt] = lost.get(fmt, 0) + r["dropped"] + r["failed"]
                    if fmt not in best or r["rps"] > best[fmt]["rps"]:
                        best[fmt] = r
            off = best["off"]
            print(
                f"  {receiver:8} off     {off['rps']:8.0f} req/s  cpu {off['cpu_us']:5.0f} us/req", flush=True
            )
            for fmt in formats:
                on = best[fmt]
                ratio = on["rps"] / off["rps"]
                events = on["sent"] + on["failed"] + on["dropped"]
                miss = ratio < TARGET_RATIO or lost[fmt] > 0
                misses += miss
                print(
                    f"  {receiver:8} {fmt:7} {on['rps']:8.0f} req/s  cpu {on['cpu_us']:5.0f} us/req  "
                    f"on/off {ratio:4.2f}x (cpu {off['cpu_us'] / on['cpu_us']:4.2f}x)  "
                    f"sender thread {on['logger_cpu'] / max(events / 2, 1) * 1e6:4.1f} us/req  "
                    f"events {events:.0f}: "
                    f"sent {on['sent']:.0f} failed {on['failed']:.0f} dropped {on['dropped']:.0f}, "
                    f"receiver counted {on['received']:.0f}" + ("  MISS" if miss else ""),
                    flush=True,
                )
    print(f"target: on/off >= {TARGET_RATIO}x and 0 dropped/failed in every round; {misses} miss(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
