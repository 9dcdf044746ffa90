"""Where a server's CPU goes: py-spy samples of a running process, summed by function.

py-spy is not a project dependency (``pip install py-spy`` anywhere and pass its path, or have it
on PATH). It samples from the load core, pausing the process for each sample (exact stacks; the
run is not timed), only threads that hold the GIL (``--gil``: Python work; native code that
releases the GIL, onnxruntime or a socket write, is not counted), and writes the "raw" collapsed-stack
format: one ``frame;frame;...;leaf COUNT`` line per distinct stack. :func:`hot` reads it back as
each function's share of all samples, by self time (the leaf) and by inclusive time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import loadgen

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def find(path: str | None) -> str | None:
    """The py-spy executable: ``path`` if given, else the one on PATH, else ``None``."""
    return path if path else shutil.which("py-spy")


def start(pyspy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Starts sampling ``pid`` for ``seconds`` into ``out``; wait on the returned process."""
    cmd = [*loadgen.pin(loadgen.LOAD_CORE), pyspy, "record", "--gil", "-f", "raw", "-r", "100"]
    return subprocess.Popen(
        [*cmd, "-d", str(max(1, round(seconds))), "-p", str(pid), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = "/".join(Path(m["file"]).parts[-2:])
    return f"{m['func']} ({file})"


def hot(raw: Path, top: int = 10) -> dict[str, list[tuple[str, float]]]:
    """``{"self": [(function, share)], "inclusive": [...]}``, the ``top`` functions of each.

    Inclusive leaves out frames found in every sample of the threads they appear in (a thread's
    bootstrap, the event loop's ``run_forever``): they say nothing about where the time goes.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    per_root: Counter[str] = Counter()
    roots: dict[str, set[str]] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        per_root[frames[0]] += n
        for name in set(frames):
            inclusive[name] += n
            roots.setdefault(name, set()).add(frames[0])
    if not total:
        return {"self": [], "inclusive": []}
    telling = [
        (name, n / total) for name, n in inclusive.most_common() if n < sum(per_root[r] for r in roots[name])
    ]
    return {"self": [(name, n / total) for name, n in own.most_common(top)], "inclusive": telling[:top]}
