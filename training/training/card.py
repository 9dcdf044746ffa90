"""The model card: held-out metrics, data hash, parameters, ONNX parity and artifact hashes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score


def metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = (proba[:, 1] >= 0.5).astype(np.int64) if proba.ndim == 2 else proba
    return {
        "roc_auc": round(float(roc_auc_score(y_true, proba[:, 1])), 6),
        "accuracy": round(float(accuracy_score(y_true, pred)), 6),
        "precision": round(float(precision_score(y_true, pred, zero_division=0)), 6),
        "recall": round(float(recall_score(y_true, pred, zero_division=0)), 6),
        "f1": round(float(f1_score(y_true, pred, zero_division=0)), 6),
    }


def write(card: dict[str, Any], out: Path) -> None:
    (out / "model_card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (out / "model_card.md").write_text(markdown(card))


def markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    lines = [
        f"# Model card: {card['name']} (version {card['version']})",
        "",
        card["description"],
        "",
        "## Intended use",
        card["intended_use"],
        "",
        "## Data",
        f"- source: {card['data']['source']}",
        f"- target: {card['data']['target']}",
        f"- rows: {card['data']['n_train']} train / {card['data']['n_test']} held out "
        f"(seed {card['data']['seed']})",
        f"- sha256 of the raw data: `{card['data']['sha256']}`",
        "",
        "## Held-out metrics",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {k} | {v:.4f} |" for k, v in m.items()],
        "",
        "## ONNX parity",
        f"max |onnxruntime - native| over the held-out probabilities: "
        f"{card['parity']['max_abs_diff']:.2e} (limit {card['parity']['tolerance']:.0e})",
        "",
        "## Parameters",
        "```json",
        json.dumps(card["parameters"], indent=2, sort_keys=True),
        "```",
        "",
        "## Artifacts",
        *[f"- `{name}` sha256 `{a['sha256']}`" for name, a in card["artifacts"].items()],
        *([f"- content hash `{card['content_hash']}`"] if card.get("content_hash") else []),
        "",
        *_lineage(card),
        *_evaluation(card),
    ]
    return "\n".join(lines)


def _lineage(card: dict[str, Any]) -> list[str]:
    lineage = card.get("lineage")
    if not isinstance(lineage, dict):
        return []
    parent = lineage.get("parent")
    lines = [
        "## Lineage",
        f"- parent: {parent['version']} (content hash `{parent['content_hash']}`)"
        if parent
        else "- parent: none",
        f"- code version: `{lineage.get('code_version')}`",
    ]
    data = lineage.get("data")
    if data:
        w, rows = data["window"], data["rows"]
        lines.append(
            f"- data: {rows['original']} original + {rows['train_production']} production rows "
            f"({_time(w['train_from'])} .. {_time(w['train_until'])}) for training; hold-out "
            f"{rows['holdout']} rows ({_time(w['holdout_from'])} .. {_time(w['holdout_until'])}) "
            f"from {data['source']}"
        )
    diff = lineage.get("metrics_diff")
    if diff:
        lines.append(
            "- metrics vs parent on the same hold-out: " + ", ".join(f"{k} {v:+.4f}" for k, v in diff.items())
        )
    return [*lines, ""]


def _evaluation(card: dict[str, Any]) -> list[str]:
    ev = card.get("evaluation")
    if not isinstance(ev, dict):
        return []
    lines = [
        "## Champion vs challenger",
        f"Decision: **{ev['decision']}** (margin {ev['margin']}, {ev['resamples']} paired bootstrap "
        f"resamples, {ev['level']:.0%} intervals, {ev['n_holdout']} hold-out rows; "
        f"gated: {', '.join(ev['gated'])})",
        "",
        "| metric | champion | challenger | difference |",
        "| --- | --- | --- | --- |",
    ]
    for m, d in ev["diff"].items():
        a, b = ev["champion"][m], ev["challenger"][m]
        lines.append(
            f"| {m} | {a['value']:.4f} [{a['low']:.4f}, {a['high']:.4f}] | {b['value']:.4f} "
            f"[{b['low']:.4f}, {b['high']:.4f}] | {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] |"
        )
    return [*lines, "", *[f"- {r}" for r in ev["reasons"]], ""]


def _time(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
