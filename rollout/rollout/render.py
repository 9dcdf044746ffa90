"""Output: rich tables for people, JSON for scripts, patches as JSON for --dry-run."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from .analysis import Metrics, Verdict

__all__ = ["console", "echo_json", "metrics_table", "verdict_lines"]


def console() -> Console:
    """A console on the current stdout (so a CLI runner's capture works); wide when not a terminal.

    Markup is off: hosts, messages and ``[ok]`` / ``[FAIL]`` are printed as they are."""
    c = Console(file=sys.stdout, highlight=False, markup=False)
    if not c.is_terminal:
        c = Console(file=sys.stdout, highlight=False, markup=False, width=140, no_color=True)
    return c


def echo_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else fmt.format(x)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1000 * x:.1f} ms"


def _drift(m: Metrics) -> str:
    if m.drift is None:
        return "no data"
    return f"DRIFT ({m.drift:g})" if m.drifted else f"none ({m.drift:g})"


def metrics_table(
    stable: Metrics | None, canary: Metrics | None, rows_before: list[tuple[str, str, str]]
) -> Table:
    """Stable and canary side by side: the given rows, then the metrics (when there are any)."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("stable")
    table.add_column("canary")
    for row in rows_before:
        table.add_row(*row)
    if stable is not None and canary is not None:
        table.add_row("requests in window", _num(stable.requests, "{:.0f}"), _num(canary.requests, "{:.0f}"))
        table.add_row(
            "request rate", _num(stable.request_rate, "{:.2f}/s"), _num(canary.request_rate, "{:.2f}/s")
        )
        table.add_row("error rate (5xx, gRPC non-OK)", _pct(stable.error_rate), _pct(canary.error_rate))
        table.add_row("success rate", _pct(stable.success_rate), _pct(canary.success_rate))
        table.add_row("p50 latency", _ms(stable.p50), _ms(canary.p50))
        table.add_row("p99 latency", _ms(stable.p99), _ms(canary.p99))
        table.add_row("drift", _drift(stable), _drift(canary))
        table.add_row("accuracy (labelled)", _pct(stable.accuracy), _pct(canary.accuracy))
        table.add_row(
            "labelled predictions", _num(stable.labelled, "{:.0f}"), _num(canary.labelled, "{:.0f}")
        )
    return table


def verdict_lines(verdict: Verdict) -> list[str]:
    head = (
        "verdict: PASS (the canary may advance)"
        if verdict.ok
        else "verdict: FAIL (the canary would be held / rolled back)"
    )
    return [head, *(f"  [{'ok' if c.ok else 'FAIL'}] {c.detail}" for c in verdict.checks)]
