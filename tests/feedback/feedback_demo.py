"""``make demo``'s feedback step: ground truth in, live quality per track out, a canary held back.

Serves the stable (gbm) and canary (mlp) bundles with real predictor processes logging to one
real drift detector with a feedback store (SQLite in a temporary folder); sends the held-out
records of training's split to both tracks, posts their true labels to
``/v1/models/NAME:feedback`` (with a few bad pairs, to show the per-pair answers), prints the live
quality per InferenceService beside the model card, then has a real Prometheus scrape the detector
and judges the canary with the rollout analysis's quality gate (``max_accuracy_drop=0.02``,
``min_labelled=100``): the weaker mlp canary is held back. Every process is stopped by PID.

    .venv/bin/python tests/feedback/feedback_demo.py --bundles .bundles
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedback_prometheus import scraping, wait_for
from rollout.analysis import QuerySet, Thresholds, collect, judge
from rollout.prometheus import Prometheus
from rollout.render import verdict_lines
from serving_common import Bundle
from support import MODEL, VENV_DRIFT_PYTHON, ServerProcess, free_port, predictor_process
from training.data import load

CLASSES = ("low_risk", "high_risk")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, default=Path(".bundles"))
    args = parser.parse_args()
    split = load(seed=7)
    rows = Bundle.open(args.bundles / "gbm").spec().vectorise(split.test_records)
    with tempfile.TemporaryDirectory(prefix="feedback-demo-") as tmp:
        folder = Path(tmp)
        port = free_port()
        listen = ["--http_port", str(port), "--host", "127.0.0.1"]
        detector = ServerProcess(
            ["-m", "drift_detector", "--model_dir", str(args.bundles / "gbm"), *listen],
            ready_url=f"http://127.0.0.1:{port}/ready",
            python=VENV_DRIFT_PYTHON,
            env={"DRIFT_BACKEND": "scipy", "DRIFT_FEEDBACK_DB_URL": f"sqlite:///{folder / 'feedback.db'}"},
            log_path=folder / "drift.log",
        )
        url = f"http://127.0.0.1:{port}"
        started: list[ServerProcess] = [detector.start()]
        try:
            tracks = {}
            for isvc, bundle in (("diabetes-risk-stable", "gbm"), ("diabetes-risk-canary", "mlp")):
                p = predictor_process(
                    args.bundles / bundle,
                    folder / f"{isvc}.log",
                    extra=["--logger_url", url + "/", "--inference_service", isvc, "--namespace", "demo"],
                )
                started.append(p.process.start())
                tracks[isvc] = p
            with httpx.Client(timeout=30) as client:
                print(f"{len(rows)} held-out patients to both tracks (the answer's id is the feedback id)")
                for i, row in enumerate(rows):
                    for isvc, p in tracks.items():
                        body = {
                            "id": f"{isvc}-{i}",
                            "inputs": [
                                {
                                    "name": "input",
                                    "shape": [1, len(row)],
                                    "datatype": "FP32",
                                    "data": row.tolist(),
                                }
                            ],
                        }
                        assert client.post(p.infer_url, json=body).status_code == 200
                time.sleep(1.0)  # the loggers send in the background
                for isvc in tracks:
                    pairs = [{"id": f"{isvc}-{i}", "label": CLASSES[y]} for i, y in enumerate(split.y_test)]
                    if isvc.endswith("stable"):
                        pairs += [
                            {"id": "never-answered", "label": "high_risk"},
                            {"id": pairs[0]["id"], "label": "maybe"},
                        ]
                    answer = client.post(f"{url}/v1/models/{MODEL}:feedback", json={"instances": pairs})
                    doc = answer.json()
                    print(
                        f"feedback for {isvc}: HTTP {answer.status_code}, "
                        f"accepted {doc['accepted']}, rejected {doc['rejected']}"
                    )
                    for refused in (r for r in doc["results"] if r["outcome"] != "accepted"):
                        print(f"  pair {refused['index']}: {refused['outcome']}: {refused['error']}")
                quality = client.get(f"{url}/quality", params={"refresh": "true"}).json()
            card = quality["model_card"]
            print(
                f"\n{'live quality':<28}{'model card':>11}"
                + "".join(f"{s['inferenceservice']:>24}" for s in quality["streams"])
            )
            for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "brier_score", "log_loss"):
                values = "".join(f"{s['metrics'][name]:>24.3f}" for s in quality["streams"])
                print(f"{name:<28}{card.get(name, float('nan')):>11.3f}{values}")
            print(f"{'labelled':<28}{'':>11}" + "".join(f"{s['labelled']:>24}" for s in quality["streams"]))
            print(f"(HTML: {url}/status?format=html while it runs)")
            prometheus, scraper = scraping(f"127.0.0.1:{port}", folder)
            started.append(scraper)
            wait_for(prometheus, "quality_labelled_predictions", 2)
            with Prometheus(prometheus) as prom:
                stable = collect(prom, "diabetes-risk-stable", QuerySet())
                canary = collect(prom, "diabetes-risk-canary", QuerySet())
            gate = Thresholds(min_requests=0, max_accuracy_drop=0.02, min_labelled=100)
            verdict = judge(stable, canary, gate)
            print("\nrollout quality gate (max accuracy drop 2 points, at least 100 labelled per side):")
            print(
                "\n".join(
                    line for line in verdict_lines(verdict) if "error rate" not in line and "p99" not in line
                )
            )
            return 0 if not verdict.ok else 1  # the weaker canary must be held back
        finally:
            for process in reversed(started):
                process.stop()


if __name__ == "__main__":
    sys.exit(main())
