"""Transformer and explainer demo: raw records in, labels and an explanation out.

Starts a real predictor on the stable bundle, a transformer in front of it (V2 gRPC to the
predictor) and an explainer (Kernel SHAP, gRPC to the predictor); sends raw patient records
through the transformer (V1 records, then V2 columns with tritonclient), shows one 400 that
names every problem of a bad batch, asks the explainer about one record and checks that the
attributions add up to the model's output. Every process is stopped (by PID) before it exits.
Run from the repo root: ``.venv/bin/python tests/tools/transformer_demo.py --bundles .bundles``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import tritonclient.http as httpclient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serving_common import Bundle
from support import ServerProcess, free_port, running

MODEL = "diabetes-risk"
RECORDS = [
    {"age": 59, "sex": "male", "bmi": 32.1, "bp": 101, "tc": 157, "ldl": 93.2, "hdl": 38, "tch": 4,
     "ltg": 4.8598, "glu": 87},
    {"age": 48, "sex": "female", "bmi": 21.6, "bp": 87, "tc": 183, "ldl": 103.2, "hdl": 70, "tch": 3,
     "ltg": 3.8918, "glu": 69},
    {"age": 36, "sex": "female", "bmi": 22.9, "bp": 74},  # serum values missing: training medians
]  # fmt: skip
BAD = [
    {"age": 130, "sex": "x", "bmi": 30.0, "bp": 90},
    {"sex": "male", "bmi": "heavy", "bp": 90, "smoker": True},
]


def heading(text: str) -> None:
    print(f"\n--- {text} " + "-" * max(0, 76 - len(text)), flush=True)


def server(module: str, args: list[str], logs: Path) -> tuple[ServerProcess, int, int]:
    http, grpc = free_port(), free_port()
    proc = ServerProcess(
        ["-m", module, "--model_name", MODEL, "--http_port", str(http), "--grpc_port", str(grpc), *args],
        ready_url=f"http://127.0.0.1:{http}/v2/models/{MODEL}/ready",
        log_path=logs / f"{module}.log",
        ready_timeout=180.0,
    )
    return proc, http, grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundles", type=Path, default=Path(".bundles"))
    args = parser.parse_args()
    bundle = args.bundles / "gbm"
    spec = Bundle.open(bundle).spec()
    with tempfile.TemporaryDirectory(prefix="transformer-demo-") as tmp:
        logs = Path(tmp)
        predictor, _, p_grpc = server("predictor", ["--model_dir", str(bundle)], logs)
        common = [
            "--model_dir",
            str(bundle),
            "--predictor_host",
            f"127.0.0.1:{p_grpc}",
            "--predictor_protocol",
            "grpc-v2",
        ]
        transformer, t_http, _ = server("transformer", common, logs)
        explainer, e_http, _ = server("explainer", common, logs)
        with running(predictor, transformer, explainer), httpx.Client(timeout=60) as http:
            base = f"http://127.0.0.1:{t_http}"
            heading(f"transformer at {base} -> predictor over gRPC (V1 raw records)")
            r = http.post(f"{base}/v1/models/{MODEL}:predict", json={"instances": RECORDS},
                          headers={"x-request-id": "demo-1"})  # fmt: skip
            body = r.json()
            print(f"HTTP {r.status_code}, model {body['model_name']} version {body['model_version']}, "
                  f"id {body['id']}")  # fmt: skip
            for record, p in zip(RECORDS, body["predictions"], strict=True):
                print(f"  {json.dumps(record)[:66]:68} -> {p['label']:9} p={p['probability']:.3f}")

            heading("the same records as V2 columns (tritonclient.http): one input per feature")
            client = httpclient.InferenceServerClient(f"127.0.0.1:{t_http}")
            try:
                inputs = []
                for f in spec.features:
                    values = [r.get(f.name) for r in RECORDS]
                    if f.type == "categorical":
                        array = np.array(values, dtype=np.object_)
                        inp = httpclient.InferInput(f.name, [len(values)], "BYTES")
                    else:
                        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                        inp = httpclient.InferInput(f.name, [len(values)], "FP64")
                    inp.set_data_from_numpy(array, binary_data=False)
                    inputs.append(inp)
                result = client.infer(MODEL, inputs)
            finally:
                client.close()
            labels = [s.decode() for s in result.as_numpy("label")]
            probability = [f"{p:.3f}" for p in result.as_numpy("probability")]
            print("labels:", labels, " probability:", probability)

            heading("a bad batch: one 400 naming every problem, by record and field")
            r = http.post(f"{base}/v1/models/{MODEL}:predict", json={"instances": BAD})
            print(f"HTTP {r.status_code}")
            for problem in re.split(r"; (?=record \d+, field )", r.json()["error"]):
                print("  ", problem)

            heading(
                f"explainer at http://127.0.0.1:{e_http}: why is record 0 {body['predictions'][0]['label']}?"
            )
            start = time.perf_counter()
            r = http.post(
                f"http://127.0.0.1:{e_http}/v1/models/{MODEL}:explain", json={"instances": RECORDS[:1]}
            )
            seconds = time.perf_counter() - start
            e = r.json()["explanations"][0]
            print(f"P({r.json()['explained_class']}) = {e['output']:.4f}; base value {e['base_value']:.4f} "
                  f"(mean over the training background); Kernel SHAP in {seconds:.2f} s")  # fmt: skip
            for name, value in sorted(e["attributions"].items(), key=lambda kv: -abs(kv[1])):
                bar = "+" * round(abs(value) * 100) if value > 0 else "-" * round(abs(value) * 100)
                print(f"  {name:>4} = {e['features'][name]!s:<8} {value:+.4f} {bar}")
            total = e["base_value"] + sum(e["attributions"].values())
            print(f"base + sum(attributions) = {total:.6f} = output {e['output']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
