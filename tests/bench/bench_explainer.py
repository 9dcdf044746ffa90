"""``make bench``: seconds per explanation of one record, explainer -> predictor, at the defaults.

Starts a real predictor and a real explainer (gRPC to the predictor, EXPLAINER_* defaults unless
set in the environment) on free loopback ports, explains held-out records one request per
record after one warm-up request (which also evaluates the SHAP background once), and prints
the mean, median, p95 and max seconds per explanation, plus predictor requests per record.
Every answer must be a 200 carrying one explanation, and the warm-up record's explanation is
checked before any timing: its label and output equal onnxruntime on the vectorised record
(1e-5) and its attributions add up (``base_value + sum == output``). Anything else is an
``ERROR`` line and exit status 1 (its timing would be meaningless). The result is also written to ``--out``.

    .venv/bin/python tests/bench/bench_explainer.py [--bundle .bundles/gbm] [--records 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
import loadgen  # noqa: E402
from serving_common import Bundle  # noqa: E402
from support import REPO, ServerProcess, free_port  # noqa: E402

MODEL = "bench"


def predictor_requests(url: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "predictor_requests_total" and s.labels.get("model_name") == MODEL
    )


def bad_answer(r: httpx.Response) -> str | None:
    """Why an explain answer is not a success (a 200 with one explanation), or ``None``."""
    if r.status_code != 200:
        return f"status {r.status_code}: {r.text[:300]}"
    explanations = r.json().get("explanations")
    if not isinstance(explanations, list) or len(explanations) != 1:
        return f"expected one explanation, got {r.text[:300]}"
    return None


def sanity_check(r: httpx.Response, bundle: Path, record: dict[str, object]) -> str | None:
    """Why the warm-up explanation disagrees with onnxruntime on the record, or ``None``."""
    import onnxruntime as ort

    failure = bad_answer(r)
    if failure:
        return failure
    b = Bundle.open(bundle)
    spec = b.spec()
    label, proba = ort.InferenceSession(str(b.model_path)).run(
        None, {spec.input_name: spec.vectorise([record])}
    )
    body = r.json()
    explained = list(spec.classes).index(body["explained_class"])
    e = body["explanations"][0]
    try:
        loadgen.check_close("label", [e["label"]], [spec.classes[int(label[0])]])
        loadgen.check_close("output", [e["output"]], [proba[0, explained]])
        loadgen.check_close(
            "base_value + sum(attributions)",
            [e["base_value"] + sum(e["attributions"].values())],
            [e["output"]],
        )
    except loadgen.SanityError as err:
        return f"sanity check failed: {err}"
    return None


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--bundle", type=Path, default=REPO / ".bundles" / "gbm", help="model bundle")
    parser.add_argument("--records", type=int, default=20, help="records to explain, one request each")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "explainer.json")
    args = parser.parse_args(argv)

    from training import data

    records = data.load(7).test_records[: args.records + 1]
    with tempfile.TemporaryDirectory(prefix="bench-explainer-") as tmp:
        p_http, p_grpc, e_http, e_grpc = free_port(), free_port(), free_port(), free_port()
        predictor = ServerProcess(
            ["-m", "predictor", "--model_name", MODEL, "--model_dir", str(args.bundle),
             "--http_port", str(p_http), "--grpc_port", str(p_grpc)],
            ready_url=f"http://127.0.0.1:{p_http}/v2/models/{MODEL}/ready",
            log_path=Path(tmp) / "predictor.log",
        )  # fmt: skip
        explainer = ServerProcess(
            ["-m", "explainer", "--model_name", MODEL, "--model_dir", str(args.bundle),
             "--predictor_host", f"127.0.0.1:{p_grpc}", "--predictor_protocol", "grpc-v2",
             "--http_port", str(e_http), "--grpc_port", str(e_grpc)],
            ready_url=f"http://127.0.0.1:{e_http}/v2/models/{MODEL}/ready",
            log_path=Path(tmp) / "explainer.log",
            ready_timeout=180.0,
        )  # fmt: skip
        url = f"http://127.0.0.1:{e_http}/v1/models/{MODEL}:explain"
        failure: str | None = None
        try:
            predictor.start(wait=False)
            explainer.start(wait=False)
            predictor.wait_ready()
            explainer.wait_ready()
            with httpx.Client(timeout=60) as client:
                warm_up = client.post(url, json={"instances": records[:1]})
                failure = sanity_check(warm_up, args.bundle, records[0])
                before = predictor_requests(f"http://127.0.0.1:{p_http}")
                seconds = []
                for record in records[1:]:
                    if failure:
                        break
                    start = time.perf_counter()
                    r = client.post(url, json={"instances": [record]})
                    seconds.append(time.perf_counter() - start)
                    failure = bad_answer(r)
                per_record = (predictor_requests(f"http://127.0.0.1:{p_http}") - before) / max(
                    len(seconds), 1
                )
        except httpx.HTTPError as e:
            failure = f"{type(e).__name__}: {e}"
        finally:
            explainer.stop()
            predictor.stop()
    if failure:
        print(f"ERROR explainer bench: {failure}")
        print("explainer bench: FAILED; its numbers are not valid")
        return 1

    s = np.array(seconds)
    result = {
        "records": len(s),
        "mean_s": round(float(s.mean()), 4),
        "p50_s": round(float(np.percentile(s, 50)), 4),
        "p95_s": round(float(np.percentile(s, 95)), 4),
        "max_s": round(float(s.max()), 4),
        "predictor_requests_per_record": round(per_record, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"explainer (Kernel SHAP, defaults) on {args.bundle}: {len(s)} records, one request each")
        print(f"  seconds per explanation: mean {result['mean_s']:.3f}  p50 {result['p50_s']:.3f}  "
              f"p95 {result['p95_s']:.3f}  max {result['max_s']:.3f}")  # fmt: skip
        print(f"  predictor requests per explanation: {result['predictor_requests_per_record']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
