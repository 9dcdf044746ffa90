"""``python -m local_stack``: up, down, status, env, stop, start, trace (and the stack's own programs)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .errors import StackError
from .retraining import canary_bundle, drift_bundle, stable_bundle
from .settings import StackSettings

__all__ = ["main"]

EXAMPLE = {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
           "ltg": 4.8598, "glu": 87}  # fmt: skip


def endpoints(d: dict[str, Any]) -> str:
    model, envoy = d["model"], d["envoy"]
    body = json.dumps({"instances": [EXAMPLE]})
    lines = [
        "",
        f"inference (Envoy, routes from VirtualService {d['virtualService']['name']}): {envoy}",
        f"Prometheus: {d['prometheus']}   Alertmanager: {d['alertmanager']}   Envoy admin: {d['envoyAdmin']}",
        f"drift detector: {d['driftDetector']}/status   notifications: {d['receiver']}/deliveries",
        f"traces: {d['traceStore']}/traces (make trace: the newest as a span tree)",
        f"VirtualService file: {d['virtualService']['file']}",
        f"logs: {Path(d['routesStatus']).parent.parent / 'logs'}",
        "",
        "try:",
        f"  curl -s {envoy}/v1/models/{model}:predict -H 'content-type: application/json' -d '{body}'",
        f"  curl -s {envoy}/v1/models/{model}:predict -H 'x-model-version: canary' "
        f"-H 'content-type: application/json' -d '{body}'",
        f"  curl -s {envoy}/v1/models/{model}:explain -H 'content-type: application/json' -d '{body}'",
        f"  curl -s {d['driftDetector']}/status",
        "  .venv/bin/rollout status --router local",
        "  .venv/bin/rollout set-weight 50 --router local",
        "  .venv/bin/rollout run --router local --steps 25,50,100 --interval 20s --window 30s",
        "  make status;  make down",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    p.add_argument(
        "--state-dir", type=Path, default=None, help="state folder (default .stack, env STACK_STATE_DIR)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start everything and wait until ready")
    sub.add_parser("demo", help="a narrated scenario on the running stack")
    sub.add_parser("down", help="stop everything (nothing is left running)")
    st = sub.add_parser("status", help="processes, readiness, routes")
    st.add_argument("-o", "--output", choices=["table", "json"], default="table")
    env = sub.add_parser("env", help="set (KEY=VALUE) or unset (KEY=) a program's environment and restart it")
    env.add_argument("program")
    env.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    for verb in ("stop", "start"):
        sub.add_parser(verb, help=f"{verb} one program (by supervisord)").add_argument("program")
    cb = sub.add_parser(
        "canary-bundle", help="point the canary's programs at a bundle (pvc://model-bundles/NAME)"
    )
    cb.add_argument("storage_uri")
    tr = sub.add_parser("trace", help="the newest trace (or TRACE_ID) of the trace store as a span tree")
    tr.add_argument("trace_id", nargs="?", help="32 hex digits (default: the newest trace)")
    tr.add_argument("--last", action="store_true", help="the newest trace (the default)")
    tr.add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for the trace to be complete (default 5)"
    )
    tr.add_argument("-o", "--output", choices=["tree", "json"], default="tree")
    sb = sub.add_parser(
        "stable-bundle",
        help="point the stable programs at a bundle (after a promotion; pvc://model-bundles/NAME)",
    )
    sb.add_argument("storage_uri")
    db = sub.add_parser(
        "drift-bundle",
        help="restart the drift detector on a bundle's reference (after a promotion; pvc://model-bundles/NAME)",
    )
    db.add_argument("storage_uri")
    ex = sub.add_parser("exec", help=argparse.SUPPRESS)
    ex.add_argument("program")
    sub.add_parser("routes", help=argparse.SUPPRESS)
    sub.add_parser("receiver", help=argparse.SUPPRESS)
    sub.add_parser("trace-store", help=argparse.SUPPRESS)
    return p


def _exec(settings: StackSettings, name: str) -> None:
    """Replace this process (same PID, so supervisord's PID is the program's) with the program."""
    programs = json.loads((settings.state_dir / "programs.json").read_text())
    command: list[str] = programs[name]["command"]
    env = {**os.environ, **programs[name]["env"], "PYTHONUNBUFFERED": "1"}
    if "local_stack" not in command and "PYTHONPATH" not in programs[name]["env"]:
        env.pop("PYTHONPATH", None)  # supervisord's, for the stack's own programs only
    os.execve(command[0], command, env)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = (
        StackSettings() if args.state_dir is None else StackSettings(state_dir=args.state_dir.resolve())
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from .stack import Stack

    stack = Stack(settings, say=lambda line: print(line, flush=True))
    try:
        if args.command == "up":
            print(endpoints(stack.up()))
        elif args.command == "demo":
            from .demo import run

            if not stack.supervisor.running():
                raise StackError("the stack is not up: make up (make demo does it first)")
            return run(settings, stack)
        elif args.command == "down":
            pids = stack.down()
            print(f"stopped {len(pids)} processes" if pids else "the stack was not running")
        elif args.command == "status":
            rows = stack.status()
            if args.output == "json":
                print(json.dumps({"processes": rows}, indent=2))
            elif not rows:
                print("the stack is not running (make up)")
            else:
                for r in rows:
                    ready = "ready" if r["ready"] else "NOT READY"
                    print(f"{r['name']:22} {r['state']:9} pid {r['pid']:<8} {ready:9} {r['uptime']}")
                routes = json.loads(stack.paths.status.read_text()) if stack.paths.status.exists() else {}
                if routes.get("ok"):
                    print(
                        f"routes: VirtualService resourceVersion {routes['resourceVersion']} applied to Envoy"
                    )
                else:
                    print(f"routes: last VirtualService change NOT applied: {routes.get('error')}")
                print(endpoints(stack.describe()))
        elif args.command == "env":
            changes: dict[str, str | None] = {}
            for a in args.assignments:
                key, sep, value = a.partition("=")
                if not sep or not key:
                    raise StackError(f"expected KEY=VALUE (or KEY= to unset), got {a!r}")
                changes[key] = value or None
            stack.restart(args.program, changes)
            print(f"{args.program} restarted with {changes}")
        elif args.command in ("stop", "start"):
            stack.restart(args.program, start=args.command == "start")
            print(f"{args.program}: {args.command}ed")
        elif args.command == "canary-bundle":
            print(canary_bundle(stack, args.storage_uri))
        elif args.command == "trace":
            from .tracetree import fetch, render

            if args.last and args.trace_id:
                raise StackError("give a TRACE_ID or --last, not both")
            url = f"http://127.0.0.1:{settings.port('trace-store')}"
            trace = fetch(url, args.trace_id.lower() if args.trace_id else None, wait=args.wait)
            print(json.dumps(trace, indent=2) if args.output == "json" else render(trace))
        elif args.command == "stable-bundle":
            print(stable_bundle(stack, args.storage_uri))
        elif args.command == "drift-bundle":
            print(drift_bundle(stack, args.storage_uri))
        elif args.command == "exec":
            _exec(settings, args.program)
        elif args.command in ("routes", "receiver", "trace-store"):
            # supervisord stops programs with SIGTERM: exit 0, not "terminated by SIGTERM"
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        if args.command == "routes":
            from .envoy import cluster_name
            from .routes import watch

            services = stack.describe()["services"]
            clusters = {cluster_name(h, int(p)) for h, ports in services.items() for p in ports}
            watch(stack.paths, clusters, settings.routes_poll_interval)
        if args.command == "receiver":
            from .receiver import serve

            serve(settings.port("receiver"))
        if args.command == "trace-store":
            from .tracestore import serve as serve_traces

            serve_traces(
                settings.port("trace-store"), settings.trace_keep, settings.state_dir / "traces.jsonl"
            )
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
