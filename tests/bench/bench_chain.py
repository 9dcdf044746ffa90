"""``make bench``: the path users call, transformer -> predictor, against the predictor direct.

One real predictor and two real transformers in front of it (``--predictor_protocol grpc-v2``
and ``v2``, the REST hop), all three pinned to core 0 as in one pod's share of a node; wrk loads
them from core 1. Bodies: V1 records (``{"instances": [record]}``) and V2 columns (one input per
feature) for the transformers, the same record as a V2 FP32 tensor for the predictor direct.
For each concurrency (1, 8, 32) the direct run comes first and the four chain runs right after,
so a busy machine slows them alike. Printed: requests/s, p50/p99, CPU microseconds per request
of EACH process (``/proc/PID/stat``), ratios against the direct run, and the issue's targets as
``ok`` / ``MISS`` lines: chain >= 0.5x direct at c8 over either hop, chain p99 <= 3x p50 at c8,
REST hop within 20 % of the gRPC hop at c8, and at c1 no path slower (relative to the direct
run) than in ``--baseline`` (``make bench`` keeps the previous run there); see ``chain_targets.py``.
With ``--profile DIR``, each target is then loaded once more at c8 (untimed) while py-spy samples
each of its processes, and the functions that take the CPU are printed (``cpu_profile.py``).

Honesty: before any timing, each target answers the record once and must equal onnxruntime on
the vectorised row (label, probability to 1e-5). A timed run with a single non-2xx, socket error
or timeout is an ``ERROR`` line and exit status 1. Targets missed are printed, not failed.

    .venv/bin/python tests/bench/bench_chain.py [--bundle .bundles/gbm] [--duration 3] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import chain_targets  # noqa: E402
import cpu_profile  # noqa: E402
import loadgen  # noqa: E402
from model_stack import Server, component, started_together  # noqa: E402
from serving_common import Bundle, FeatureSpec  # noqa: E402
from support import REPO  # noqa: E402

HOPS = {"grpc": "grpc-v2", "rest": "v2"}
"""Chain name -> the transformer's ``--predictor_protocol``."""


@dataclass
class Target:
    """One thing timed: a URL, the body sent to it, and the processes whose CPU it costs."""

    name: str
    url: str
    body: bytes
    processes: dict[str, Server]


def bodies(spec: FeatureSpec, record: dict[str, Any]) -> dict[str, bytes]:
    """The one record as V1 records, V2 columns, and the vectorised V2 FP32 tensor."""
    columns = [
        {"name": f.name, "datatype": "BYTES", "shape": [1], "data": [str(record[f.name])]}
        if f.type == "categorical"
        else {"name": f.name, "datatype": "FP64", "shape": [1], "data": [float(record[f.name])]}
        for f in spec.features
    ]
    x = spec.vectorise([record]).astype(np.float32)
    tensor = {
        "name": spec.input_name,
        "datatype": "FP32",
        "shape": list(x.shape),
        "data": loadgen.json_rows(x),
    }
    return {
        "v1-records": json.dumps({"instances": [record]}).encode(),
        "v2-columns": json.dumps({"inputs": columns}).encode(),
        "tensor": json.dumps({"inputs": [tensor]}).encode(),
    }


def answer(target: Target, classes: list[str]) -> tuple[str, float]:
    """(label, probability of that label) as the target answers the body once."""
    r = httpx.post(target.url, content=target.body, headers={"content-type": "application/json"}, timeout=30)
    if r.status_code != 200:
        raise loadgen.SanityError(f"status {r.status_code}: {r.text[:300]}")
    body = r.json()
    if "predictions" in body:  # V1 records answer
        p = body["predictions"][0]
        return str(p["label"]), float(p["probability"])
    out = {o["name"]: o["data"] for o in body["outputs"]}
    if "probability" in out:  # the transformer's V2 answer
        return str(out["label"][0]), float(out["probability"][0])
    label = int(np.asarray(out["label"]).reshape(-1)[0])  # the predictor's tensors
    return classes[label], float(np.asarray(out["probabilities"]).reshape(-1, len(classes))[0, label])


def sanity_check(target: Target, want: tuple[str, float], classes: list[str]) -> None:
    label, probability = answer(target, classes)
    loadgen.check_close(f"{target.name} label", [label], [want[0]])
    loadgen.check_close(f"{target.name} probability", [probability], [want[1]])


def targets(predictor: Server, hops: dict[str, Server], payloads: dict[str, bytes]) -> list[Target]:
    found = [Target("direct", predictor.v2, payloads["tensor"], {"predictor": predictor})]
    for hop, transformer in hops.items():
        for body, url in (("v1-records", transformer.v1), ("v2-columns", transformer.v2)):
            procs = {"transformer": transformer, "predictor": predictor}
            found.append(Target(f"{hop} {body}", url, payloads[body], procs))
    return found


def pids(target: Target) -> dict[str, int]:
    out = {}
    for name, server in target.processes.items():
        assert server.process.proc is not None
        out[name] = server.process.proc.pid
    return out


def measure(args: Any, checked: list[Target], failures: list[str]) -> dict[str, dict[int, loadgen.Run]]:
    results: dict[str, dict[int, loadgen.Run]] = {}
    for conc in args.concurrency:
        for target in checked:
            meter = loadgen.CpuMeter(pids(target))
            try:
                run = loadgen.wrk(
                    target.url, target.body, concurrency=conc, seconds=args.duration, workdir=args.workdir
                )
            except loadgen.WrkError as e:
                failures.append(f"{target.name} c{conc}: {e}")
                continue
            run.charge(meter.spent())
            failure = run.failure()
            cpu = "  ".join(f"{k} {v:5.0f}" for k, v in run.cpu_us.items())
            print(
                f"  {target.name:18} c{conc:<3} {run.rps:8.0f} req/s  p50 {run.p50_ms:7.2f} ms  "
                f"p99 {run.p99_ms:7.2f} ms  cpu us/req: {cpu}  {'ERROR ' + failure if failure else 'ok'}",
                flush=True,
            )
            if failure:
                failures.append(f"{target.name} c{conc}: {failure}")
            else:
                results.setdefault(target.name, {})[conc] = run
    return results


def print_table(results: dict[str, dict[int, loadgen.Run]]) -> dict[str, dict[int, float]]:
    print(
        "\npath                conc |   req/s | vs direct | p50 ms | p99 ms | p99/p50 | "
        "cpu us/req transformer | predictor | total | total vs direct"
    )
    ratios: dict[str, dict[int, float]] = {}
    direct = results.get("direct", {})
    for name, by_conc in results.items():
        for conc, r in sorted(by_conc.items()):
            base = direct.get(conc)
            ratio = r.rps / base.rps if base and base.rps else float("nan")
            ratios.setdefault(name, {})[conc] = ratio
            total = sum(r.cpu_us.values())
            base_cpu = sum(base.cpu_us.values()) if base else float("nan")
            print(
                f"{name:19} {conc:4} | {r.rps:7.0f} | {ratio:8.2f}x | {r.p50_ms:6.2f} | {r.p99_ms:6.2f} | "
                f"{r.p99_ms / r.p50_ms if r.p50_ms else float('nan'):6.1f}x | "
                f"{r.cpu_us.get('transformer', 0.0):22.0f} | {r.cpu_us['predictor']:9.0f} | {total:5.0f} | "
                f"{total / base_cpu:14.1f}x"
            )
    return ratios


def profile(args: Any, checked: list[Target], failures: list[str]) -> dict[str, Any]:
    """py-spy profiles of every process of every target at c8, in runs that are not timed."""
    pyspy = cpu_profile.find(args.py_spy)
    if pyspy is None:
        print("no py-spy (pip install py-spy, then --py-spy PATH): no profile taken")
        return {}
    args.profile.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {}
    print(f"\nwhere the CPU goes at c8 (py-spy, samples holding the GIL, share per process) {args.profile}:")
    for target in checked:
        files = {
            name: args.profile / f"{target.name.replace(' ', '-')}-{name}.txt" for name in target.processes
        }
        spies = {
            name: cpu_profile.start(pyspy, pid, args.duration, files[name])
            for name, pid in pids(target).items()
        }
        try:
            run = loadgen.wrk(
                target.url, target.body, concurrency=8, seconds=args.duration, workdir=args.workdir
            )
            if run.failure():
                failures.append(f"{target.name} profile run c8: {run.failure()}")
        except loadgen.WrkError as e:
            failures.append(f"{target.name} profile run c8: {e}")
        for name, spy in spies.items():
            _, err = spy.communicate(timeout=args.duration + 60)
            if spy.returncode != 0 or not files[name].is_file():
                print(f"  {target.name} / {name}: py-spy failed: {err.decode(errors='replace')[-300:]}")
                continue
            hot = cpu_profile.hot(files[name])
            found[f"{target.name} / {name}"] = hot
            print(f"  {target.name} / {name}")
            for kind in ("self", "inclusive"):
                print(f"    {kind:9}: " + "; ".join(f"{share:.0%} {fn}" for fn, share in hot[kind][:6]))
    return found


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--bundle", type=Path, default=REPO / ".bundles" / "gbm")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per timed run")
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "chain.json")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=REPO / "bench-results" / "chain-previous.json",
        help="c1 compared with it",
    )
    parser.add_argument(
        "--profile", type=Path, help="also profile each process at c8 with py-spy into this folder"
    )
    parser.add_argument("--py-spy", dest="py_spy", help="py-spy executable (default: on PATH)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("ERROR chain bench: wrk is not installed (apt-get install wrk); `make bench` installs it")
        return 2

    from training import data

    bundle = Bundle.open(args.bundle)
    spec = bundle.spec()
    classes = list(spec.classes)
    record = data.load(7).test_records[0]
    x = spec.vectorise([record]).astype(np.float32)
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {spec.input_name: x})
    want = (classes[int(label[0])], float(proba[0, int(label[0])]))

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        args.workdir = logs = Path(tmp)
        flags = ["--model_dir", str(args.bundle)]
        predictor = component("predictor", flags, logs / "predictor.log")
        hosts = {"grpc": predictor.grpc, "rest": f"127.0.0.1:{predictor.http_port}"}
        hops = {
            hop: component(
                "transformer",
                [*flags, "--predictor_host", hosts[hop], "--predictor_protocol", protocol],
                logs / f"transformer-{hop}.log",
            )
            for hop, protocol in HOPS.items()
        }
        servers = [predictor, *hops.values()]
        with started_together(servers):
            for server in servers:
                assert server.process.proc is not None
                loadgen.pin_process(server.process.proc.pid, loadgen.SERVER_CORE)
            checked = []
            for target in targets(predictor, hops, bodies(spec, record)):
                try:
                    sanity_check(target, want, classes)
                    checked.append(target)
                except (loadgen.SanityError, httpx.HTTPError, KeyError, ValueError) as e:
                    failures.append(f"{target.name}: sanity check failed: {e}")
            results = measure(args, checked, failures)
            profiles = profile(args, checked, failures) if args.profile else {}

    ratios = print_table(results)
    lines = chain_targets.check(results) + chain_targets.check_c1(results, args.baseline)
    print("\ntargets (issue 10; a MISS is reported, it does not fail the bench):")
    for line in lines:
        print(f"  {line}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "results": {k: {str(c): r.to_json() for c, r in v.items()} for k, v in results.items()},
        "ratios_vs_direct": ratios,
        "targets": lines,
        "profiles": profiles,
        "failures": failures,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"results written to {args.out}")
    return loadgen.report("chain bench", failures)


if __name__ == "__main__":
    sys.exit(main())
