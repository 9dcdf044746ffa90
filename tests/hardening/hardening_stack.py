"""Hardening helpers: the detector process, raw sockets, peak RSS, and a closed-loop load.

Not in conftest.py (every test folder has one, so ``from conftest import`` would be ambiguous)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from support import VENV_DRIFT_PYTHON, ServerProcess, free_port

MODEL = "diabetes-risk"
ROW = [0.5, 1.0, 0.2, 0.1, 0.3, 0.0, 0.4, 0.6, 0.7, 0.9]
V2_OK = orjson.dumps({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": ROW}]})
SERVER_ERRORS = range(500, 600)
LEAK = re.compile(r"0x[0-9a-f]{6,}|127\.0\.0\.1:\d+|\[::\]:\d+|Traceback", re.IGNORECASE)
"""What an error body must never carry: object addresses, host:port, tracebacks."""


@dataclass
class Detector:
    url: str
    process: ServerProcess


def start_detector(bundle: Path, log: Path, env: dict[str, str] | None = None) -> Detector:
    port = free_port()
    proc = ServerProcess(
        ["-m", "drift_detector", "--model_dir", str(bundle), "--http_port", str(port), "--host", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/ready",
        python=VENV_DRIFT_PYTHON,
        env={"DRIFT_BACKEND": "scipy", **(env or {})},
        log_path=log,
    )
    proc.start()
    return Detector(f"http://127.0.0.1:{port}", proc)


def assert_client_error(status: int, body: bytes, what: str) -> None:
    """A 4xx whose JSON body names the problem, without internals."""
    assert status not in SERVER_ERRORS, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        document = orjson.loads(body)
        message = document.get("error") if isinstance(document, dict) else None
        assert isinstance(message, str) and len(message) > 5, f"{what}: {status} {body[:300]!r}"
        assert not LEAK.search(message), f"{what}: internals in {message!r}"


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (``VmHWM``) in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def rss_kib(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def raw_exchange(url: str, request: bytes, timeout: float = 30.0) -> bytes:
    """Send ``request`` bytes as they are on a new connection; everything answered until close."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    return match is not None and len(body) >= int(match.group(1))


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@dataclass
class Outcomes:
    """What the clients of a closed-loop load saw, by kind: ``ok``, ``status:503``, error class names."""

    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1


def closed_loop(
    clients: int, call: Callable[[], str], stop: threading.Event, outcomes: Outcomes, limit: int = 100_000
) -> list[threading.Thread]:
    """``clients`` threads each calling ``call`` back to back (bounded by ``limit`` calls) until ``stop``."""

    def run() -> None:
        for _ in range(limit):
            if stop.is_set():
                return
            outcomes.add(call())

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads


def metric_value(text: str, name: str, **labels: Any) -> float:
    """The value of one sample in Prometheus text (0.0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def send_huge(url: str, path: str, total: int, *, chunked: bool, headers: bytes = b"") -> bytes:
    """POST ``total`` zero bytes (Content-Length or chunked) from one thread while reading the answer
    in this one, so an early answer is read even when the server stops reading the body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    framing = b"transfer-encoding: chunked\r\n" if chunked else b"content-length: %d\r\n" % total
    head = b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n%s%s\r\n" % (
        path.encode(),
        framing,
        headers,
    )
    sock = socket.create_connection((host, int(port)), timeout=60)
    chunk = b"\0" * (1 << 20)

    def sender() -> None:
        try:
            sock.sendall(head)
            sent = 0
            while sent < total:
                n = min(len(chunk), total - sent)
                sock.sendall(b"%x\r\n%s\r\n" % (n, chunk[:n]) if chunked else chunk[:n])
                sent += n
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server stopped reading and closed: expected
            return

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    received = b""
    try:
        while not (b"\r\n\r\n" in received and _complete(received)):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    except OSError:
        pass
    finally:
        sock.close()
        thread.join(timeout=60)
    return received
