"""One retraining run: production data -> challenger -> champion vs challenger -> new version or not.

Outcomes (also the exit codes of ``python -m training retrain``):

* ``accepted`` (0): the challenger is not worse than the champion on the recent hold-out (see
  :mod:`training.evaluation`); it is written as the immutable folder ``<bundles>/<version>/`` whose
  card carries the decision, its numbers and the lineage.
* ``refused`` (3): the data set cannot support the comparison (:class:`DataSetError`).
* ``rejected`` (4): the challenger lost; nothing is written but the run report.
* ``unavailable`` (5): the labelled predictions could not be read.

Every run leaves a report ``<bundles>/runs/<run id>.json`` (and ``--result FILE``, e.g. the
pod's ``/dev/termination-log``): what was decided and why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from serving_common.bundle import Bundle

from training import card as model_card
from training import data, dataset, evaluation, production, versions
from training.bundle_writer import DESCRIPTION, PARITY_TOLERANCE, check_parity, write_bundle
from training.lineage import code_version, parent_of
from training.models import OUTPUT_PROBABILITIES, TRAINERS

__all__ = ["EXIT_CODES", "Run", "Source", "retrain"]

EXIT_CODES = {"accepted": 0, "refused": 3, "rejected": 4, "unavailable": 5}


@dataclass(frozen=True)
class Source:
    """Where labelled predictions come from: the store's base URL or a JSON Lines file."""

    url: str | None = None
    file: Path | None = None
    since: float = 0.0
    inferenceservice: str | None = None


@dataclass
class Run:
    decision: str
    reasons: list[str]
    run_id: str
    version: str | None = None
    bundle: str | None = None
    storage_uri: str | None = None
    parent: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def report(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**out, **self.extra}


def _score(bundle: Bundle, input_name: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([OUTPUT_PROBABILITIES], {input_name: x})[0], dtype=np.float64)[:, 1]


def _load(source: Source, names: list[str], classes: list[str]) -> production.LabelledRows:
    if source.file is not None:
        return production.read_file(source.file, names, classes)
    if source.url is None:
        raise production.SourceError("no source of labelled predictions (--feedback-url or --labelled)")
    return production.fetch(
        source.url, names, classes, since=source.since, inferenceservice=source.inferenceservice
    )


def retrain(
    champion_dir: Path,
    source: Source,
    bundles: Path,
    *,
    requirements: dataset.Requirements | None = None,
    margin: float = 0.01,
    resamples: int = 1000,
    seed: int = 7,
    kind: str | None = None,
    storage_prefix: str | None = None,
    now: dt.datetime | None = None,
) -> Run:
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    champion = Bundle.open(champion_dir)
    champion.verify()
    spec = champion.spec()
    card = champion.card or {}
    kind = kind or str(card.get("model_type") or "gbm")
    version = versions.new_version(kind, at)
    parent = parent_of(champion)
    run = Run(decision="refused", reasons=[], run_id=version, parent=parent)
    try:
        rows = _load(source, spec.names, list(spec.classes))
    except production.SourceError as e:
        run.decision, run.reasons = "unavailable", [str(e)]
        return _finish(run, bundles)
    try:
        ds = dataset.build(spec, data.load(seed), rows, requirements or dataset.Requirements(), seed)
    except dataset.DataSetError as e:
        run.reasons = [str(e)]
        run.data = {"production_rows": len(rows), "source": rows.source}
        return _finish(run, bundles)
    run.data = {
        "source": rows.source,
        "window": ds.window,
        "rows": ds.counts,
        "served_by": list(rows.model_versions),
    }
    trained = TRAINERS[kind](ds.x_train, ds.y_train, seed, spec.input_name)
    proba, parity = check_parity(trained, spec.input_name, ds.x_holdout)
    p_champion = _score(champion, spec.input_name, ds.x_holdout)
    cmp = evaluation.compare(
        ds.y_holdout, p_champion, proba[:, 1], margin=margin, resamples=resamples, seed=seed
    )
    run.evaluation = cmp.as_card()
    run.reasons = cmp.reasons
    if not cmp.accepted:
        run.decision = "rejected"
        return _finish(run, bundles)
    run.decision = "accepted"
    new_card: dict[str, Any] = {
        "name": card.get("name", "diabetes-risk"),
        "version": version,
        "description": card.get("description", DESCRIPTION),
        "intended_use": card.get("intended_use", "Demonstration of the serving stack; not for clinical use."),
        "model_type": kind,
        "classes": list(spec.classes),
        "data": {
            "source": f"{card.get('data', {}).get('source', 'original data')} "
            f"+ labelled production rows from {rows.source}",
            "target": spec.target,
            "seed": seed,
            "n_train": ds.counts["train"],
            "n_test": ds.counts["holdout"],
            "sha256": _rows_hash(ds),
        },
        "metrics": model_card.metrics(ds.y_holdout, proba),
        "parameters": trained.parameters,
        "parity": {"max_abs_diff": parity, "tolerance": PARITY_TOLERANCE, "n": ds.counts["holdout"]},
        "lineage": {
            "parent": parent,
            "code_version": code_version(),
            "data": run.data,
            "metrics_diff": {m: d["value"] for m, d in cmp.diff.items()},
            "created_at": at.isoformat().replace("+00:00", "Z"),
        },
        "evaluation": run.evaluation,
    }
    # the drift reference is today's population (the production rows it learnt from and was judged
    # on), not the original data mixed into training: against the old mix, the very traffic that
    # made the model would keep drifting and the loop would retrain again and again
    x_reference = np.concatenate(
        [ds.x_train[len(ds.x_train) - ds.counts["train_production"] :], ds.x_holdout]
    )
    new_card["data"]["reference"] = f"{len(x_reference)} production rows (training and hold-out)"
    path = versions.publish(
        bundles, version, lambda tmp: write_bundle(tmp, trained, spec, x_reference, new_card, seed=seed)
    )
    run.version, run.bundle = version, str(path)
    run.storage_uri = f"{storage_prefix.rstrip('/')}/{version}" if storage_prefix else None
    run.extra["content_hash"] = new_card["content_hash"]
    return _finish(run, bundles)


def _rows_hash(ds: dataset.DataSet) -> str:
    digest = hashlib.sha256()
    for a in (ds.x_train, ds.y_train, ds.x_holdout, ds.y_holdout):
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _finish(run: Run, bundles: Path) -> Run:
    runs = bundles / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{run.run_id}.json").write_text(json.dumps(run.report(), indent=2, sort_keys=True) + "\n")
    return run
