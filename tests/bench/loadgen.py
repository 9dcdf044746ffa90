"""What every bench shares: cores, CPU time from /proc, wrk runs that count every status, sanity checks.

A timed run is honest only if every request it counted was answered with a 2xx (or gRPC OK):
:class:`Run` carries the status counts and socket errors of one run and :meth:`Run.failure` says
what went wrong, if anything. wrk reads the request body from a file (never from a Lua string
literal: nested JSON arrays contain ``]]``, which ends a Lua long string, and wrk then silently
sends bodiless GETs), and a Lua ``response()``/``done()`` pair (:data:`COUNTING_LUA`) counts each
status and prints one ``WRK_RESULT`` JSON line. A run whose script did not report is a failure,
never a number. :func:`wrk` posts one body; :func:`wrk_script` runs a script of one's own (its
``init(args)`` reads its bodies from the files named in ``args``) with the same counting.

Servers run pinned to :data:`SERVER_CORE`, load generators to :data:`LOAD_CORE` (when taskset
exists and the machine has two cores), as in one pod's share of a node.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SERVER_CORE = 0
LOAD_CORE = 1

COUNTING_LUA = r"""
-- Appended to every wrk script: counts every response status per thread and prints one
-- WRK_RESULT JSON line when done. A script of its own may define init() and request(), not
-- setup(), response() or done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts, parts = {}, {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("statuses")) do
      counts[key] = (counts[key] or 0) + n
    end
  end
  for key, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', key, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "seconds": %.6f, "p50_ms": %.4f, "p99_ms": %.4f, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end

statuses = {}
"""

_POST_FILE_LUA = r"""
-- POST the body in the file named by the first argument after `--`, with the content type given
-- second (a file, never a Lua string literal: JSON's "]]" would end a long string).
function init(args)
  local f = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = args[2]
end
"""


def sample_rows(n: int, features: int = 10) -> np.ndarray:
    """The model-input rows every predictor bench sends: float32 ``[n, features]``, 3 decimals.

    ``json_rows`` writes the same values into JSON so that a server parsing them gets these floats.
    """
    return np.random.default_rng(0).uniform(1, 5, size=(n, features)).round(3).astype(np.float32)


def json_rows(x: np.ndarray) -> list[list[float]]:
    """``x`` as nested JSON-able lists whose decimal text parses back to the same float32 values."""
    return [[float(np.format_float_positional(v, unique=True)) for v in row] for row in x]


def pin(core: int) -> list[str]:
    """The ``taskset`` prefix that runs a command on ``core`` (empty on a one-core machine)."""
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def pin_process(pid: int, core: int = SERVER_CORE) -> None:
    """Moves every thread of a running process to ``core``."""
    if pin(core):
        subprocess.run(["taskset", "-acp", str(core), str(pid)], check=True, capture_output=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each of several processes spent between construction and :meth:`spent`."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def spent(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}


@dataclass
class Run:
    """One timed run: requests answered, wall seconds, latency percentiles, every status seen."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    """HTTP status (``"200"``) or gRPC code name (``"OK"``) -> count."""
    socket_errors: dict[str, int] = field(default_factory=dict)
    cpu_us: dict[str, float] = field(default_factory=dict)
    """Process name -> CPU microseconds per answered request."""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def failure(self) -> str | None:
        """What makes this run worthless (any non-2xx, socket error, timeout, nothing answered)."""
        bad = {s: n for s, n in self.statuses.items() if not _success(s) and n}
        sockets = {k: n for k, n in self.socket_errors.items() if n}
        problems = []
        if bad:
            problems.append(f"{sum(bad.values())} error responses ({_counts(bad)})")
        if sockets:
            problems.append(f"socket errors ({_counts(sockets)})")
        if self.requests <= 0:
            problems.append("no request answered")
        return "; ".join(problems) or None

    def charge(self, cpu: Mapping[str, float]) -> None:
        """Records CPU seconds spent per process as microseconds per answered request."""
        self.cpu_us = {name: s / max(self.requests, 1) * 1e6 for name, s in cpu.items()}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": self.rps}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        return cls(**{k: v for k, v in data.items() if k != "rps"})


def _success(status: str) -> bool:
    return status == "OK" or (status.isdigit() and 200 <= int(status) < 300)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items()))


class WrkError(RuntimeError):
    """wrk did not run, or its script did not report (a run that measured nothing)."""


def wrk(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    seconds: float,
    workdir: Path,
    content_type: str = "application/json",
    timeout_s: float = 10.0,
) -> Run:
    """POSTs ``body`` to ``url`` with wrk (one thread on :data:`LOAD_CORE`) for ``seconds``."""
    body_file = workdir / f"body-{hashlib.sha1(body).hexdigest()[:16]}.bin"
    if not body_file.exists():
        body_file.write_bytes(body)
    return wrk_script(
        url,
        _POST_FILE_LUA,
        [str(body_file), content_type],
        concurrency=concurrency,
        seconds=seconds,
        workdir=workdir,
        timeout_s=timeout_s,
    )


def wrk_script(
    url: str,
    script: str,
    script_args: Sequence[str],
    *,
    concurrency: int,
    seconds: float,
    workdir: Path,
    timeout_s: float = 10.0,
) -> Run:
    """Runs wrk with a Lua ``script`` of one's own (``init(args)`` receives ``script_args``; read
    bodies from files there) plus :data:`COUNTING_LUA`, and returns the counted :class:`Run`."""
    path = workdir / f"wrk-{hashlib.sha1(script.encode()).hexdigest()[:16]}.lua"
    if not path.exists():
        path.write_text(script + "\n" + COUNTING_LUA)
    duration = max(1, round(seconds))
    cmd = [
        *pin(LOAD_CORE),
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(path),
        url,
        "--",
        *script_args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_RESULT ")]
    if proc.returncode != 0 or len(lines) != 1:
        raise WrkError(
            f"wrk exited {proc.returncode} without one result line: {proc.stderr.strip()[-500:]} "
            f"{proc.stdout.strip()[-500:]}"
        )
    data = json.loads(lines[0].removeprefix("WRK_RESULT "))
    run = Run(
        requests=int(data["requests"]),
        seconds=float(data["seconds"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        statuses={str(k): int(v) for k, v in data["statuses"].items()},
        socket_errors={k: int(v) for k, v in data["socket_errors"].items()},
    )
    counted = sum(run.statuses.values())
    if counted != run.requests:  # every answered request went through response()
        run.socket_errors["uncounted"] = abs(run.requests - counted)
    return run


class SanityError(AssertionError):
    """A target's answer differs from onnxruntime's on the same rows: its timing would be meaningless."""


def check_close(what: str, got: Iterable[Any], want: Iterable[Any], atol: float = 1e-5) -> None:
    """Raises :class:`SanityError` unless ``got`` equals ``want`` (same shape, within ``atol``)."""
    g, w = (
        np.asarray(list(got) if not isinstance(got, np.ndarray) else got),
        np.asarray(list(want) if not isinstance(want, np.ndarray) else want),
    )
    if g.shape != w.shape:
        raise SanityError(f"{what}: shape {g.shape}, onnxruntime {w.shape}")
    if g.dtype.kind in "OUS" or w.dtype.kind in "OUS":
        if not np.array_equal(g.astype(str), w.astype(str)):
            raise SanityError(f"{what}: {g.tolist()[:4]} != onnxruntime {w.tolist()[:4]}")
        return
    if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=0.0, atol=atol):
        worst = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
        raise SanityError(f"{what}: differs from onnxruntime by up to {worst:.3g} (> {atol:g})")


def report(name: str, failures: list[str]) -> int:
    """Prints one loud line per failed run and returns the bench's exit status (1 if any failed)."""
    if not failures:
        print(f"{name}: every timed run answered 2xx/OK only, no socket errors")
        return 0
    for line in failures:
        print(f"ERROR {name}: {line}", flush=True)
    print(f"{name}: FAILED ({len(failures)} run(s) with errors); its numbers are not valid", flush=True)
    return 1
