"""Every shell command the READMEs show is run by a test, or listed here with the test that covers it.

The commands run as written (:mod:`readme_runner`): real servers on free loopback ports, real curl.
Following the READMEs in order (predictor, then transformer and explainer against it, then the
drift detector and its feedback example) must work and answer what the READMEs say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from readme_runner import Command, DocSession, commands
from support import REPO

READMES = sorted(
    [REPO / "README.md", *REPO.glob("*/README.md"), *REPO.glob("helm/*/README.md"), *REPO.glob("docs/*.md")]
)

RUN_HERE = {
    ("predictor/README.md", 0),
    ("transformer/README.md", 0),
    ("explainer/README.md", 0),
    ("drift-detector/README.md", 0),
    ("drift-detector/README.md", 1),
}
"""(README, bash block) run by the tests of this module."""

LOCAL_STACK = "tests/system/test_local_stack.py"
COVERED_ELSEWHERE = {
    ("README.md", 0): f"{LOCAL_STACK}::test_readme_quickstart runs it on the test stack",
    ("README.md", 1): (
        "tests/system/test_retraining_loop.py drives the same loop on a stack started with "
        "STACK_RETRAINING=true (shorter rollout steps than the demo's)"
    ),
    ("rollout/README.md", 0): "needs a cluster: tests/rollout run these commands against the fake API server",
    ("rollout/README.md", 1): (
        f"{LOCAL_STACK}::test_readme_quickstart runs status and set-weight as written; "
        "test_rollout_run_promotes_a_healthy_canary_step_by_step runs `rollout run --router local`"
    ),
    ("rollout/README.md", 2): "the pip install lines of `make install`",
    ("rollout/README.md", 3): "the test suite itself (make test)",
    ("rollout/README.md", 4): "tests/rollout/test_rollout_prometheus_e2e.py: analyze on a real Prometheus",
    ("transformer/README.md", 1): "the test suite itself (make test)",
    ("explainer/README.md", 1): "the test suite itself and `make bench`",
    ("training/README.md", 0): "`make bundles` (every `make test` runs it) runs these commands",
    ("training/README.md", 1): "tests/retraining/test_real_store.py runs `training retrain` on a real store",
    ("helm/model-serving/README.md", 0): (
        "needs a cluster: tests/helm/test_cluster.py checks what these commands install"
    ),
    ("docs/runbook.md", 0): "needs a cluster (kubectl logs on a pod)",
    ("docs/runbook.md", 1): (
        "needs a cluster (ingress, kubectl logs); tests/system/test_local_stack_traces.py sends a "
        "traceparent through Envoy and finds the trace"
    ),
}


def test_every_bash_block_is_run_or_covered() -> None:
    """A new README command needs a test (or a line here saying which test covers it)."""
    found = {(str(readme.relative_to(REPO)), i) for readme in READMES for i, _ in enumerate(commands(readme))}
    assert found - RUN_HERE - COVERED_ELSEWHERE.keys() == set(), "bash blocks no test runs"
    assert (RUN_HERE | COVERED_ELSEWHERE.keys()) - found == set(), "listed blocks that no longer exist"


def block(readme: str, index: int) -> list[Command]:
    return commands(REPO / readme)[index]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, gbm_bundle: Path) -> Iterator[DocSession]:
    s = DocSession(tmp_path_factory.mktemp("readme"), {"gbm": gbm_bundle})
    try:
        yield s
    finally:
        s.close()


def test_predictor_readme(session: DocSession) -> None:
    _, infer, metadata = session.run_block(block("predictor/README.md", 0))
    answer = json.loads(infer.stdout)
    assert answer["model_name"] == "diabetes-risk"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["label"]["shape"] == [1] and outputs["label"]["data"][0] in (0, 1)
    p = outputs["probabilities"]["data"]
    assert len(p) == 2 and sum(p) == pytest.approx(1.0, abs=1e-5)
    meta = json.loads(metadata.stdout)
    assert meta["platform"] == "onnxruntime"
    assert meta["versions"] == [answer["model_version"]]
    assert [i["name"] for i in meta["inputs"]] == ["input"]


def test_transformer_readme_against_the_predictor(session: DocSession) -> None:
    """The transformer README's predictor address is the predictor README's gRPC port."""
    assert session.ports.get("8081"), "runs after test_predictor_readme (the predictor it calls)"
    _, predict = session.run_block(block("transformer/README.md", 0))
    answer = json.loads(predict.stdout)
    (prediction,) = answer["predictions"]
    assert prediction["label"] in ("low_risk", "high_risk")
    assert set(prediction["probabilities"]) == {"low_risk", "high_risk"}
    assert prediction["probability"] == pytest.approx(prediction["probabilities"][prediction["label"]])
    assert answer["model_name"] == "diabetes-risk" and answer["id"]


def test_explainer_readme_against_the_predictor(session: DocSession) -> None:
    """The explainer README's predictor address is the predictor README's gRPC port (its default hop)."""
    assert session.ports.get("8080"), "runs after test_predictor_readme (the predictor it calls)"
    _, explain = session.run_block(block("explainer/README.md", 0))
    answer = json.loads(explain.stdout)
    assert answer["model_name"] == "diabetes-risk"
    text = json.dumps(answer)
    for feature in ("age", "sex", "bmi", "bp"):
        assert f'"{feature}"' in text, f"no attribution for {feature}: {text[:500]}"


def test_drift_detector_readme(session: DocSession) -> None:
    _, status = session.run_block(block("drift-detector/README.md", 0))
    body = json.loads(status.stdout)
    assert body["queue"]["idle"] is True and body["streams"] == []


def test_drift_detector_feedback_readme(session: DocSession) -> None:
    """Prediction logged by a real predictor, then labelled by its id: the README's feedback loop."""
    results = session.run_block(block("drift-detector/README.md", 1))
    infer, feedback, quality = results[2], results[4], results[5]
    assert json.loads(infer.stdout)["id"] == "patient-42"
    outcome = json.loads(feedback.stdout)
    assert outcome["accepted"] == 1 and outcome["rejected"] == 0, outcome
    assert outcome["results"] == [{"index": 0, "id": "patient-42", "outcome": "accepted", "labelled": 1}]
    (stream,) = json.loads(quality.stdout)["streams"]
    assert (stream["inferenceservice"], stream["namespace"], stream["component"]) == (
        "diabetes-risk",
        "local",
        "predictor",
    )
    assert (stream["predictions"], stream["labelled"], stream["label_coverage"]) == (1, 1, 1.0)
    label = json.loads(infer.stdout)["outputs"][0]
    assert label["name"] == "label"
    assert stream["metrics"]["accuracy"] == (1.0 if label["data"] == [1] else 0.0)
