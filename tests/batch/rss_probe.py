"""Run ``predictor.batch`` in this process and print its peak RSS growth (a child of test_memory).

Prints one JSON line: the resident set size once everything is imported and a tiny warm-up file is
scored (``baseline``), and the process's peak resident set size after scoring the real input
(``peak``), in bytes.
"""

from __future__ import annotations

import json
import sys

from predictor.batch.cli import main


def _status(key: str) -> int:
    """A ``/proc/self/status`` size in bytes (``VmRSS`` now, ``VmHWM`` peak of this program's memory).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries it across ``execve``, so it would report the
    parent's (pytest's) peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name == key:
                return int(value.split()[0]) * 1024
    raise KeyError(key)


if __name__ == "__main__":
    warm, args = sys.argv[1], sys.argv[2:]
    assert main(json.loads(warm)) == 0
    baseline = _status("VmRSS")
    code = main(args)
    peak = _status("VmHWM")
    print(json.dumps({"code": code, "baseline": baseline, "peak": peak}))
