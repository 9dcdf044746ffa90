"""The batch scoring Indexed Job: off by default, rendered and valid, and its command really runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART, Helm, HelmError, validate_all

BATCH_VALUES = CHART / "ci" / "batch-values.yaml"


def _job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    jobs = [
        d
        for d in docs
        if d["kind"] == "Job" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "batch"
    ]
    assert len(jobs) == 1, [d["metadata"]["name"] for d in jobs]
    return jobs[0]


def test_no_batch_job_by_default(default_docs: list[dict[str, Any]]) -> None:
    assert not [d for d in default_docs if d["kind"] == "Job"]


def test_the_ci_scenario_renders_a_valid_indexed_job(helm: Helm, crds_dir: Path) -> None:
    from predictor.batch.errors import CheckpointConflict, InputInvalid, ModelUnusable, TooManyRejects

    docs = helm.template(BATCH_VALUES)
    assert not validate_all(docs, crds_dir)
    job = _job(docs)
    assert job["metadata"]["name"] == "model-serving-batch-nightly-20261130"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 8, 4)
    # exit codes a retry cannot fix fail the Job at once: the CLI's own codes (and 2, usage)
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["containerName"] == "batch"
    codes = {2} | {e.exit_code for e in (InputInvalid, ModelUnusable, CheckpointConflict, TooManyRejects)}
    assert set(rule["onExitCodes"]["values"]) == codes
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert spec["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    (container,) = pod["containers"]
    args = container["args"]
    assert "--shard-index" not in args  # the completion index comes from JOB_COMPLETION_INDEX
    assert args[args.index("--shard-count") + 1] == "8"
    assert container["command"] == ["python", "-m", "predictor.batch"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PREDICTOR_BATCH_MAX_REJECT_FRACTION"] == "0.05"
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"model": "model-bundles", "data": "batch-data"}


def test_object_storage_bundle_and_input_are_fetched_with_the_service_account(
    helm: Helm, crds_dir: Path
) -> None:
    docs = helm.template(
        BATCH_VALUES,
        set_values={
            "batch.storageUri": "s3://models/gbm",
            "batch.inputUri": "s3://landing/2026-11-30/records.parquet",
            "batch.input": "records.parquet",
            "serviceAccount.secrets[0]": "s3-credentials",
        },
    )
    assert not validate_all(docs, crds_dir)
    pod = _job(docs)["spec"]["template"]["spec"]
    fetch = {c["name"]: c for c in pod["initContainers"]}
    assert fetch["fetch-model"]["args"] == ["s3://models/gbm", "/mnt/models"]
    assert fetch["fetch-input"]["args"] == ["s3://landing/2026-11-30/records.parquet", "/mnt/input"]
    assert fetch["fetch-input"]["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    args = pod["containers"][0]["args"]
    assert args[args.index("--input") + 1] == "/mnt/input/records.parquet"


def test_the_v2_engine_goes_through_the_mesh_to_the_predictor(helm: Helm) -> None:
    host = "model-serving-stable-predictor.model-serving.svc.cluster.local:80"
    job = _job(
        helm.template(BATCH_VALUES, set_values={"batch.engine": "v2-grpc", "batch.predictorHost": host})
    )
    assert "sidecar.istio.io/inject" not in job["spec"]["template"]["metadata"]["labels"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--predictor-host") + 1] == host
    assert args[args.index("--model-name") + 1] == "diabetes-risk"


@pytest.mark.parametrize(
    ("set_values", "message"),
    [
        ({"batch.input": ""}, "batch.enabled needs batch.input"),
        ({"batch.data.claimName": ""}, "batch.enabled needs batch.data.claimName"),
        ({"batch.engine": "v2-rest"}, "batch.engine is v2-rest: set batch.predictorHost"),
        ({"batch.shards": "0"}, "shards"),
        ({"batch.output": "/abs/scores.csv"}, "output"),
        ({"batch.engine": "spark"}, "engine"),
    ],
)
def test_bad_batch_values_are_refused(helm: Helm, set_values: dict[str, str], message: str) -> None:
    with pytest.raises(HelmError) as e:
        helm.template(BATCH_VALUES, set_values=set_values)
    assert message in e.value.stderr


def test_the_rendered_command_scores_every_shard_and_the_shards_make_the_whole(
    helm: Helm, gbm_bundle: Path, tmp_path: Path
) -> None:
    """The Job's own args, with /data and /mnt/models pointed at local folders, run per index."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.csv as pacsv
    from serving_common import Bundle
    from support import REPO

    job = _job(helm.template(BATCH_VALUES, set_values={"batch.idColumn": "", "batch.shards": "3"}))
    container = job["spec"]["template"]["spec"]["containers"][0]
    data = tmp_path / "data"
    (data / "input").mkdir(parents=True)
    (data / "output").mkdir()
    spec = Bundle.open(gbm_bundle).spec()
    reference = Bundle.open(gbm_bundle).reference()[:100]
    records = [spec.decode_row(row) for row in reference]
    pacsv.write_csv(pa.Table.from_pylist(records), data / "input" / "records.csv")
    args = [
        a.replace("/data/", f"{data}/").replace("/mnt/models", str(gbm_bundle)) for a in container["args"]
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    outputs = []
    for index in range(job["spec"]["completions"]):
        done = subprocess.run(
            [sys.executable, *container["command"][1:], *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**__import__("os").environ, **env, "JOB_COMPLETION_INDEX": str(index)},
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["shard"] == f"{index}/3"
        outputs.append(pacsv.read_csv(data / "output" / f"scores-{index:05d}.csv"))
    rows = pa.concat_tables(outputs).column("row").to_pylist()
    assert rows == list(range(100))
