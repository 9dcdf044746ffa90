"""``python -m local_stack trace [TRACE_ID | --last]``: one trace of the trace store as a span tree.

    trace 4bf92f3577b34da6a3ce929d0e0e4736  2026-11-30T14:51:52.204Z  10.6 ms  2 spans  predictor, ...
    └─ transformer  POST /v1/models/diabetes-risk:predict  10.6 ms  UNSET  model=diabetes-risk  (parent ...)
       └─ predictor  ModelInfer  0.7 ms  UNSET  model=diabetes-risk

Children are ordered by start; a span whose parent is not in the trace (the caller's span, from
its ``traceparent``) is a root, with that parent id shown.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from .errors import StackError

__all__ = ["fetch", "render"]


def fetch(base_url: str, trace_id: str | None, wait: float = 0.0, settle: float = 1.5) -> dict[str, Any]:
    """The trace ``trace_id`` (the newest when None). Spans reach the store about a second after
    they end, each process on its own schedule: waits up to ``wait`` seconds for the trace to
    arrive and then to be quiet for ``settle`` seconds (complete), and returns what is there."""
    deadline = time.monotonic() + wait
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        while True:
            try:
                if trace_id is None:
                    listed = _json(client.get("/traces", params={"limit": 1}))["traces"]
                    found = _json(client.get(f"/traces/{listed[0]['traceId']}")) if listed else None
                else:
                    r = client.get(f"/traces/{trace_id}")
                    found = None if r.status_code == 404 else _json(r)
            except httpx.HTTPError as e:
                raise StackError(
                    f"the trace store at {base_url} does not answer ({e}): is the stack up?"
                ) from e
            if found is not None and (found["quietSeconds"] >= settle or time.monotonic() >= deadline):
                trace: dict[str, Any] = found
                return trace
            if found is not None:
                trace_id = found["traceId"]  # the newest when asked: wait for that one to settle
            if time.monotonic() >= deadline:
                what = f"trace {trace_id} is" if trace_id else "no trace is"
                raise StackError(
                    f"{what} in the trace store at {base_url}: send a request through Envoy first "
                    "(spans arrive about a second after the request)"
                )
            time.sleep(0.3)


def _json(r: httpx.Response) -> Any:
    if r.status_code != 200:
        raise StackError(
            f"trace store: {r.request.method} {r.request.url.path} answered {r.status_code}: {r.text}"
        )
    return r.json()


def render(trace: dict[str, Any]) -> str:
    spans: list[dict[str, Any]] = trace["spans"]
    ids = {s["spanId"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        children.setdefault(s["parentSpanId"], []).append(s)
    for kids in children.values():
        kids.sort(key=lambda s: s["startNs"])
    roots = sorted((s for s in spans if s["parentSpanId"] not in ids), key=lambda s: s["startNs"])
    lines = [
        f"trace {trace['traceId']}  {trace['start']}  {trace['durationMs']:.1f} ms  "
        f"{trace['spanCount']} spans  {', '.join(trace['services'])}"
        + (f"  ({trace['droppedSpans']} spans dropped)" if trace.get("droppedSpans") else "")
    ]

    def walk(span: dict[str, Any], indent: str, last: bool) -> None:
        note = ""
        if span["parentSpanId"] and span["parentSpanId"] not in ids:
            note = f"  (parent {span['parentSpanId']}: the caller, not traced)"
        status = span["status"] + (f": {span['statusMessage']}" if span.get("statusMessage") else "")
        attrs = " ".join(f"{k}={v}" for k, v in sorted(span.get("attributes", {}).items()))
        lines.append(
            f"{indent}{'└─' if last else '├─'} {span['service']}  {span['name']}  "
            f"{span['durationMs']:.1f} ms  {status}" + (f"  {attrs}" if attrs else "") + note
        )
        kids = children.get(span["spanId"], [])
        for i, kid in enumerate(kids):
            walk(kid, indent + ("   " if last else "│  "), i == len(kids) - 1)

    for i, root in enumerate(roots):
        walk(root, "", i == len(roots) - 1)
    return "\n".join(lines)
