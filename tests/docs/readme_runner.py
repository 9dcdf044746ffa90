"""Runs the shell commands a README shows, as a newcomer would type them, on free loopback ports.

A README's ```` ```bash ```` blocks are its commands (plain ```` ``` ```` blocks are synopses and
output). :func:`commands` reads them (backslash continuations joined, ``# comments`` dropped);
:class:`DocSession` runs them one by one:

* ``[VAR=value ...] python -m <component> ...`` starts that component as a real server
  (:class:`support.ServerProcess`, ``.venv-drift`` for the drift detector, ``.venv`` otherwise) and
  waits until it is ready; it runs until the session ends, or until a later command starts a
  server on the same port (the reader stopped the first one);
* anything else runs in ``bash -o pipefail`` from the repository root with ``.venv/bin`` first on
  ``PATH``; ``curl`` gets ``--fail-with-body`` and a time limit, so an HTTP error fails the command.

The fixed ports a README shows (``8080``, ``localhost:8096``, ...) become free ports, the same one
for the same number within a session, so blocks of several READMEs that talk to each other keep
doing so; ``.bundles/<kind>`` becomes the test session's bundle and ``/tmp/`` the test's folder.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support import REPO, VENV_DRIFT_PYTHON, ServerProcess, free_port

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SERVER = re.compile(
    r"^((?:[A-Z][A-Z0-9_]*=\S+\s+)*)python -m (predictor|transformer|explainer|drift_detector)(\s.*)?$"
)
PORT = re.compile(r"(?<=:)(8\d{3})\b|(?<=_port )(8\d{3})\b")
READY = {"drift_detector": "/ready"}


@dataclass(frozen=True)
class Command:
    readme: str
    block: int
    text: str

    def __str__(self) -> str:
        return f"{self.readme} block {self.block}: {self.text}"


def commands(readme: Path, lang: str = "bash") -> list[list[Command]]:
    """The README's ``lang`` blocks, each a list of commands (continuations joined, comments out)."""
    name = str(readme.relative_to(REPO))
    out: list[list[Command]] = []
    for m in FENCE.finditer(readme.read_text()):
        if m.group(1) != lang:
            continue
        joined = re.sub(r"\\\n\s*", " ", m.group(2))
        block = []
        for line in joined.splitlines():
            text = re.sub(r"(^|\s+)#\s.*$", "", line).strip()
            if text:
                block.append(Command(name, len(out), text))
        out.append(block)
    return out


@dataclass
class Result:
    command: Command
    ran: str
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        out = f"{self.stdout[-2000:]}\n{self.stderr[-2000:]}"
        assert self.returncode == 0, f"{self.command}\nran: {self.ran}\nexit {self.returncode}\n{out}"
        return self


@dataclass
class DocSession:
    """Commands of one or more READMEs run in order; servers they start live until :meth:`close`."""

    workdir: Path
    bundles: dict[str, Path]
    ports: dict[str, int] = field(default_factory=dict)
    """README port number -> the free port used instead (preset to aim at servers started elsewhere)."""
    env: dict[str, str] = field(default_factory=dict)
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    """HTTP port -> the server a command started there."""

    def translate(self, text: str) -> str:
        def port(m: re.Match[str]) -> str:
            number = m.group(1) or m.group(2)
            if number not in self.ports:
                self.ports[number] = free_port()
            return str(self.ports[number])

        text = PORT.sub(port, text).replace("/tmp/", f"{self.workdir}/")
        for kind, path in self.bundles.items():
            text = text.replace(f".bundles/{kind}", str(path))
        return text

    def run(self, command: Command, timeout: float = 300.0) -> Result:
        text = self.translate(command.text)
        server = SERVER.match(text)
        if server:
            return self._start(command, text, server)
        if text.startswith("curl "):
            text = "curl --fail-with-body --max-time 60 " + text.removeprefix("curl ")
        env = {**os.environ, **self.env, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", text],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(command, text, proc.returncode, proc.stdout, proc.stderr)

    def run_block(self, block: list[Command]) -> list[Result]:
        return [self.run(c).check() for c in block]

    def _start(self, command: Command, text: str, m: re.Match[str]) -> Result:
        env = dict(pair.split("=", 1) for pair in shlex.split(m.group(1)))
        module, args = m.group(2), shlex.split(m.group(3) or "")
        http = args[args.index("--http_port") + 1]
        python = VENV_DRIFT_PYTHON if module == "drift_detector" else REPO / ".venv" / "bin" / "python"
        log = self.workdir / f"{module}-{http}.log"
        server = ServerProcess(
            ["-m", module, *args],
            f"http://127.0.0.1:{http}{READY.get(module, '/v2/health/ready')}",
            python=python,
            env=env,
            log_path=log,
        )
        if http in self.servers:  # a later example on the same port: the reader stopped the first (Ctrl-C)
            self.servers.pop(http).stop()
        self.servers[http] = server
        server.start()
        return Result(command, text, 0, "", "")

    def close(self) -> None:
        for server in reversed(self.servers.values()):
            server.stop()
        self.servers.clear()
