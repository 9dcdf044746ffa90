"""``make demo``: the whole local stack on the embedded default (the bundles in ``.bundles``).

1. serves the stable (gbm) and canary (mlp) bundles with real predictor processes and calls
   them with tritonclient: model metadata, predictions, each bundle's model-card metrics;
2. sends raw patient records through the transformer and asks the explainer about one;
3. runs the drift demo: normal, then shifted traffic into the drift detector, with verdicts;
4. ends with the analysis the rollout CLI would act on: stable and canary metrics from a real
   Prometheus, side by side, and the verdict.

Every process it starts is stopped (by PID) before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import tritonclient.http as httpclient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serving_common import Bundle
from support import MODEL, REPO, predictor_process

RECORDS = [
    {
        "age": 59,
        "sex": "male",
        "bmi": 32.1,
        "bp": 101,
        "tc": 157,
        "ldl": 93.2,
        "hdl": 38,
        "tch": 4,
        "ltg": 4.8598,
        "glu": 87,
    },
    {
        "age": 48,
        "sex": "female",
        "bmi": 21.6,
        "bp": 87,
        "tc": 183,
        "ldl": 103.2,
        "hdl": 70,
        "tch": 3,
        "ltg": 3.8918,
        "glu": 69,
    },
    {"age": 36, "sex": "female", "bmi": 22.9, "bp": 74},
]


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 76 - len(text)), flush=True)


@contextlib.contextmanager
def predictor(bundle: Path, logs: Path, name: str) -> Iterator[tuple[str, str]]:
    p = predictor_process(bundle, logs / f"{name}.log")
    with p.process:
        yield p.http.removeprefix("http://"), p.grpc


def show_predictor(name: str, bundle: Path, http: str) -> None:
    card = Bundle.open(bundle).card or {}
    spec = Bundle.open(bundle).spec()
    client = httpclient.InferenceServerClient(http)
    try:
        meta = client.get_model_metadata(MODEL)
        x = spec.vectorise([{**{f.name: None for f in spec.features}, **r} for r in RECORDS])
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(MODEL, [inp])
    finally:
        client.close()
    heading(f"{name}: {card.get('name')} version {card.get('version')} at http://{http}")
    print("inputs :", json.dumps(meta["inputs"]))
    print("outputs:", json.dumps(meta["outputs"]))
    print("held-out metrics:", ", ".join(f"{k} {v:.3f}" for k, v in card.get("metrics", {}).items()))
    labels, probas = result.as_numpy("label"), result.as_numpy("probabilities")
    for record, label, proba in zip(RECORDS, labels, probas, strict=True):
        print(f"  {json.dumps(record)[:70]:72} -> {spec.classes[int(label)]:9} p(high)={proba[1]:.3f}")


def run_step(title: str, args: list[str]) -> None:
    heading(title)
    done = subprocess.run(args, cwd=REPO, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{title}: exited with {done.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundles", type=Path, default=REPO / ".bundles")
    args = parser.parse_args()
    stable, canary = args.bundles / "gbm", args.bundles / "mlp"
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        logs = Path(tmp)
        with (
            predictor(stable, logs, "stable") as (s_http, _),
            predictor(canary, logs, "canary") as (c_http, _),
        ):
            show_predictor("stable", stable, s_http)
            show_predictor("canary", canary, c_http)
            r = httpx.post(
                f"http://{s_http}/v2/models/{MODEL}/infer",
                json={"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 9], "data": [1] * 9}]},
            )
            heading("a bad request gets a 400 that says why")
            print(r.status_code, r.json()["error"])
    demos = REPO / "tests" / "tools"
    if (demos / "transformer_demo.py").exists():
        run_step(
            "transformer and explainer: raw records in, labels and explanations out",
            [sys.executable, str(demos / "transformer_demo.py"), "--bundles", str(args.bundles)],
        )
    if (demos / "drift_demo.py").exists():
        run_step(
            "drift detector: normal, then shifted traffic",
            [sys.executable, str(demos / "drift_demo.py"), "--bundles", str(args.bundles)],
        )
    if (demos / "rollout_demo.py").exists() and shutil.which("prometheus"):
        run_step(
            "rollout analysis: stable vs canary from a real Prometheus",
            [sys.executable, str(demos / "rollout_demo.py"), "--bundles", str(args.bundles)],
        )
    feedback_demo = REPO / "tests" / "feedback" / "feedback_demo.py"
    if feedback_demo.exists() and shutil.which("prometheus"):
        run_step(
            "feedback: ground truth in, live quality per track out, a worse canary held back",
            [sys.executable, str(feedback_demo), "--bundles", str(args.bundles)],
        )
    heading("done: every process the demo started has been stopped")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
