"""The loop with real processes, as ``make up`` would run it: the trigger process (``--router
local``) gets two alerts, runs ``python -m training retrain`` once against a feedback store
(paged ``GET /labelled`` over a real socket), and on acceptance runs the canary command and
``rollout run``; on noisy labels the challenger is rejected and neither command runs."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from labelled_store import LabelledStore
from retraining_population import export_rows, shifted
from serving_common import Bundle
from support import ServerProcess, free_port

RECORDER = """import pathlib, sys
pathlib.Path(sys.argv[1]).write_text(" ".join(sys.argv[2:]))
print("pvc://model-bundles/mlp")
"""


def _wait_idle(url: str) -> dict[str, Any]:
    for _ in range(1500):  # bounded: 5 minutes at most
        status = httpx.get(f"{url}/status", timeout=10).json()
        if status["current"] is None and status["last"]:
            return dict(status)
        time.sleep(0.2)
    raise AssertionError(f"the run did not finish: {status}")


def _events(tmp: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (tmp / "state" / "retrain" / "events.jsonl").read_text().splitlines()
    ]


def _alert(url: str) -> httpx.Response:
    body = {
        "status": "firing",
        "alerts": [{"status": "firing", "labels": {"alertname": "ModelDriftPersistent"}}],
    }
    return httpx.post(f"{url}/alertmanager", json=body, timeout=10)


@pytest.fixture
def loop(
    gbm_bundle: Path, gbm: Bundle, tmp_path: Path
) -> Callable[[float], contextlib.AbstractContextManager[tuple[str, Path]]]:
    @contextlib.contextmanager
    def start(noise: float) -> Iterator[tuple[str, Path]]:
        rows = export_rows(gbm, shifted(700, seed=3, noise=noise))
        recorder = tmp_path / "recorder.py"
        recorder.write_text(RECORDER)
        with LabelledStore(rows, gbm.spec().names, list(gbm.spec().classes)) as store:
            training = [
                sys.executable, "-m", "training", "retrain", "--champion", str(gbm_bundle),
                "--feedback-url", store.url, "--bundles", str(tmp_path / "bundles"),
                "--storage-prefix", "pvc://model-bundles", "--margin", "0.02", "--resamples", "200",
            ]  # fmt: skip
            port = free_port()
            args = [
                "-m", "rollout.retrain", "--router", "local", "--host", "127.0.0.1", "--port", str(port),
                "--poll-seconds", "0.2", "--state", str(tmp_path / "state"),
                "--training-command", shlex.join(training),
                "--canary-command", f"{sys.executable} {recorder} {tmp_path / 'canary.txt'} {{storage_uri}}",
                "--rollout-command",
                shlex.join([sys.executable, str(recorder), str(tmp_path / "rollout.txt"), "run"]),
            ]  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            with ServerProcess(args, f"{url}/healthz", log_path=tmp_path / "trigger.log"):
                yield url, tmp_path

    return start


def test_drift_alerts_retrain_once_and_the_challenger_goes_into_the_canary(loop: Any) -> None:
    with loop(0.0) as (url, tmp):
        assert _alert(url).status_code == 202
        assert _alert(url).json()["outcome"] == "duplicate"
        status = _wait_idle(url)
        assert status["last"]["decision"] == "accepted", status
        version = status["last"]["version"]
        assert (tmp / "canary.txt").read_text() == f"pvc://model-bundles/{version}"
        for _ in range(100):  # the rollout process is started, not awaited
            if (tmp / "rollout.txt").exists():
                break
            time.sleep(0.1)
        assert (tmp / "rollout.txt").read_text() == "run"
        card = Bundle.open(tmp / "bundles" / version).card
        assert card is not None and card["evaluation"]["decision"] == "accepted"
        assert card["lineage"]["data"]["rows"]["production"] == 700, "all pages were read"
        events = [
            json.loads(line) for line in (tmp / "state" / "retrain" / "events.jsonl").read_text().splitlines()
        ]
        assert [e["reason"] for e in events] == ["RetrainStarted", "RetrainPromotedToCanary"]
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'retrain_runs_total{decision="accepted"} 1' in metrics
        assert 'retrain_alerts_total{outcome="duplicate"} 1' in metrics


def test_noisy_labels_reject_the_challenger_and_nothing_changes(loop: Any) -> None:
    with loop(1.0) as (url, tmp):
        assert _alert(url).status_code == 202
        status = _wait_idle(url)
        assert status["last"]["decision"] == "rejected", status
        assert any("accepting needs" in r for r in status["last"]["reasons"])
        assert not (tmp / "canary.txt").exists() and not (tmp / "rollout.txt").exists()
        assert [p.name for p in (tmp / "bundles").iterdir()] == ["runs"]
        events = [
            json.loads(line) for line in (tmp / "state" / "retrain" / "events.jsonl").read_text().splitlines()
        ]
        assert (events[-1]["reason"], events[-1]["type"]) == ("RetrainRejected", "Warning")
