"""Runs of the real components for the start-up tests: bounded, output kept, exit code returned."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from support import REPO, VENV_DRIFT_PYTHON

COMMANDS = {
    "predictor": [sys.executable, "-m", "predictor", "--model_name", "diabetes-risk"],
    "drift_detector": [str(VENV_DRIFT_PYTHON), "-m", "drift_detector"],
    "transformer": [sys.executable, "-m", "transformer", "--model_name", "diabetes-risk"],
    "explainer": [sys.executable, "-m", "explainer", "--model_name", "diabetes-risk"],
}
OUR_PREFIXES = ("PREDICTOR_", "TRANSFORMER_", "EXPLAINER_", "DRIFT_")


@dataclass
class Run:
    code: int
    output: str

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line as JSON (a line that is not JSON fails the test: one format)."""
        docs = []
        for line in self.output.splitlines():
            if line.strip():
                try:
                    docs.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError(f"not a JSON log line: {line!r}\n{self.output}") from e
        return docs


def run(
    component: str, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120
) -> Run:
    """``python -m component args`` with our variables cleared, then ``env``; waits (bounded) for exit."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(OUR_PREFIXES)}
    proc = subprocess.run(
        [*COMMANDS[component], *args],
        cwd=REPO,
        env={**base, **(env or {}), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout.decode(errors="replace"))


@contextlib.contextmanager
def listening(port: int, *, reuseport: bool = False) -> Iterator[socket.socket]:
    """A socket listening on ``port`` on every address (as gRPC does with ``reuseport``)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("::", port))
        sock.listen(8)
        yield sock
    finally:
        sock.close()
