"""Champion vs challenger on production data: accepted with lineage, rejected on noisy labels,
refused on a data set that cannot support the comparison; versions are immutable."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from labelled_store import LabelledStore
from retraining_population import export_rows, shifted
from serving_common import Bundle
from serving_common.bundle import content_hash
from support import REPO
from training.retrain import Source, retrain

from training import production, versions

WriteLabelled = Callable[..., Path]


def test_shifted_population_gives_a_challenger_that_beats_the_champion_with_lineage(
    gbm_bundle: Path, gbm: Bundle, write_labelled: WriteLabelled, tmp_path: Path
) -> None:
    labelled = write_labelled(700)
    bundles = tmp_path / "bundles"
    run = retrain(
        gbm_bundle, Source(file=labelled), bundles, margin=0.02, resamples=300, storage_prefix="pvc://b"
    )
    assert run.decision == "accepted", run.reasons
    assert run.exit_code == 0
    assert run.version is not None and run.version.startswith("gbm-")
    assert run.storage_uri == f"pvc://b/{run.version}"
    new = Bundle.open(bundles / run.version)
    new.verify()
    card = new.card
    assert card is not None
    ev = card["evaluation"]
    assert ev["decision"] == "accepted" and ev["n_holdout"] == 210 and ev["margin"] == 0.02
    for metric in ("accuracy", "roc_auc"):
        assert ev["diff"][metric]["low"] > 0.05, ev["diff"][metric]
        assert (
            ev["challenger"][metric]["low"]
            <= ev["challenger"][metric]["value"]
            <= ev["challenger"][metric]["high"]
        )
    assert card["metrics"]["accuracy"] == pytest.approx(ev["challenger"]["accuracy"]["value"], abs=1e-6)
    lineage = card["lineage"]
    assert lineage["parent"]["version"] == gbm.version == "gbm-1"
    assert lineage["parent"]["content_hash"] == content_hash(gbm_bundle)
    assert lineage["code_version"].startswith(("git:", "training=="))
    assert lineage["data"]["rows"] == {
        "original": 442,
        "production": 700,
        "train": 442 + 490,
        "train_production": 490,
        "holdout": 210,
    }
    assert lineage["data"]["window"]["holdout_from"] == 1_800_000_000.0 + 490 * 60
    assert lineage["metrics_diff"]["accuracy"] == ev["diff"]["accuracy"]["value"]
    assert card["content_hash"] == content_hash(new.root) == new.content_hash()
    assert new.lineage == lineage
    assert new.spec() == gbm.spec(), "the challenger keeps the champion's feature contract"
    assert "## Champion vs challenger" in (new.root / "model_card.md").read_text()
    report = json.loads((bundles / "runs" / f"{run.version}.json").read_text())
    assert report["decision"] == "accepted" and report["bundle"] == str(new.root)
    # the drift reference is today's population: every row one of the production rows, none original
    rows = [json.loads(line)["features"] for line in labelled.read_text().splitlines()]
    production_rows = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float32)
    reference = new.reference().astype(np.float32)
    assert (
        len(reference) == 250 and card["data"]["reference"] == "700 production rows (training and hold-out)"
    )
    for row in reference:
        same = np.all((production_rows == row) | (np.isnan(production_rows) & np.isnan(row)), axis=1)
        assert same.any(), f"reference row {row} is not a production row"


def test_noisy_labels_give_a_rejected_challenger_and_no_new_version(
    gbm_bundle: Path, write_labelled: WriteLabelled, tmp_path: Path
) -> None:
    bundles = tmp_path / "bundles"
    run = retrain(
        gbm_bundle, Source(file=write_labelled(700, noise=1.0)), bundles, margin=0.02, resamples=300
    )
    assert (run.decision, run.exit_code, run.bundle) == ("rejected", 4, None)
    assert any("accepting needs a difference of at least 0" in r for r in run.reasons), run.reasons
    assert [p.name for p in bundles.iterdir()] == ["runs"], "a rejected challenger writes no bundle"
    report = json.loads((bundles / "runs" / f"{run.run_id}.json").read_text())
    assert report["evaluation"]["decision"] == "rejected"


@pytest.mark.parametrize(
    ("n", "options", "message"),
    [
        (50, [], "only 50 labelled production rows"),
        (
            250,
            ["--min-holdout", "100", "--holdout-fraction", "0.2"],
            "the hold-out (most recent window) has 50",
        ),
        (300, ["--holdout-seconds", "60"], "the hold-out (most recent window) has 2 labelled rows"),
    ],
)
def test_a_data_set_too_small_is_refused_with_one_line_and_exit_3(
    gbm_bundle: Path, write_labelled: WriteLabelled, tmp_path: Path, n: int, options: list[str], message: str
) -> None:
    labelled = write_labelled(n)
    cmd = [
        sys.executable,
        "-m",
        "training",
        "retrain",
        "--champion",
        str(gbm_bundle),
        "--labelled",
        str(labelled),
    ]
    result = subprocess.run(
        [*cmd, "--bundles", str(tmp_path / "b"), "--resamples", "100", *options],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["decision"] == "refused" and summary["version"] is None
    assert message in summary["reasons"][0]


def test_one_class_hold_out_is_refused(
    gbm_bundle: Path, tmp_path: Path, write_labelled: WriteLabelled
) -> None:
    rows = [json.loads(line) for line in write_labelled(400).read_text().splitlines()]
    for r in rows[-150:]:
        r["label"] = "high_risk"
    path = tmp_path / "one-class.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = retrain(gbm_bundle, Source(file=path), tmp_path / "b", resamples=100)
    assert run.decision == "refused"
    assert run.reasons == [
        "the hold-out needs at least 15 rows of every class, has low_risk=0, high_risk=120"
    ]


def test_malformed_rows_are_named_and_an_unreachable_store_is_unavailable(
    gbm_bundle: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"id": "x1", "features": [1.0], "label": "low_risk", "predicted_at": 1.0}) + "\n"
    )
    run = retrain(gbm_bundle, Source(file=path), tmp_path / "b")
    assert run.decision == "unavailable" and run.exit_code == 5
    assert run.reasons == [f"{path}:1: row 0 (x1): 1 features, expected 10"]
    run = retrain(gbm_bundle, Source(url="http://127.0.0.1:9"), tmp_path / "b")
    assert run.decision == "unavailable"
    assert run.reasons[0].startswith("feedback store http://127.0.0.1:9/labelled unreachable")


def test_versions_are_immutable(tmp_path: Path) -> None:
    def write(d: Path) -> None:
        d.mkdir()
        (d / "model.onnx").write_bytes(b"x")

    path = versions.publish(tmp_path, "gbm-1", write)
    assert (path / "model.onnx").read_bytes() == b"x"
    with pytest.raises(versions.VersionExistsError, match="already exists; versions are never overwritten"):
        versions.publish(tmp_path, "gbm-1", write)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gbm-1"]


def test_the_store_is_read_page_by_page_over_a_real_socket(gbm: Bundle) -> None:
    rows = export_rows(gbm, shifted(300, seed=5))
    spec = gbm.spec()
    with LabelledStore(rows, spec.names, list(spec.classes)) as store:
        got = production.fetch(store.url, spec.names, list(spec.classes), page_size=64, since=0.0)
        assert [int(r["after"][0]) for r in store.requests] == [0, 64, 128, 192, 256]
        assert len(got) == 300 and got.model_versions == ("gbm-1",)
        assert got.t.tolist() == [r["predicted_at"] for r in rows]
        assert got.y.tolist() == [spec.classes.index(r["label"]) for r in rows]
        twice = [*rows[:10], *({**r, "component": "transformer"} for r in rows[:10])]
        store.rows = twice
        assert len(production.fetch(store.url, spec.names, list(spec.classes))) == 10, (
            "one id, two streams: once"
        )
        with pytest.raises(production.SourceError, match=r"'glu'\] differ from the model's \['age'\]"):
            production.fetch(store.url, ["age"], list(spec.classes))
