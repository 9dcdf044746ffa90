"""The model card: held-out metrics, data hash, parameters, ONNX parity and artifact hashes."""

from __future__ import annotations

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
        "",
    ]
    return "\n".join(lines)
