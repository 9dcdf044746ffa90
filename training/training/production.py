"""Labelled predictions from production: the feedback store's export, read page by page.

The one interface retraining needs from the feedback store (issue 13) is its HTTP export
``GET /labelled?since&until&inferenceservice&limit&after`` (``docs/contracts.md``, feedback):
``{"features": [names], "classes": [names], "next_after", "rows": [{"features": [encoded, spec
order, null = missing], "label": class name, "predicted_at", "model_version", ...}]}``. The same
pages saved as JSON Lines (one page or one row per line) are accepted offline (``--labelled FILE``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

__all__ = ["LabelledRows", "SourceError", "fetch", "read_file"]

PAGE = 10_000
MAX_PAGES = 1_000
"""Bound on the paging loop (10 million rows)."""


class SourceError(RuntimeError):
    """The labelled predictions cannot be read (unreachable store, malformed answer)."""


@dataclass(frozen=True)
class LabelledRows:
    x: np.ndarray
    """float32 ``[n, n_features]``, NaN = missing (the encoding of the shared vectoriser)."""
    y: np.ndarray
    """int64 ``[n]`` class index."""
    t: np.ndarray
    """float64 ``[n]``: UNIX time of the prediction."""
    model_versions: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.y)


Row = tuple[list[float], int, float, str]


def _rows_from(
    page: dict[str, Any], names: list[str], classes: list[str], where: str, seen: set[tuple[str, int, str]]
) -> list[Row]:
    """The page's rows; a prediction logged by several streams of one InferenceService (the
    transformer's and the predictor's payload logs carry the same id) is taken once."""
    if list(page.get("features") or names) != names:
        raise SourceError(f"{where}: features {page.get('features')} differ from the model's {names}")
    out = []
    for i, row in enumerate(page.get("rows", [])):
        try:
            label = row["label"]
            y = classes.index(label) if isinstance(label, str) else int(label)
            if not 0 <= y < len(classes):
                raise ValueError(f"label {label!r} is not one of {classes}")
            feats = [math.nan if v is None else float(v) for v in row["features"]]
            if len(feats) != len(names):
                raise ValueError(f"{len(feats)} features, expected {len(names)}")
            key = (str(row.get("id", i)), int(row.get("row", 0)), str(row.get("inferenceservice", "")))
            if "id" in row and key in seen:
                continue
            seen.add(key)
            out.append((feats, y, float(row["predicted_at"]), str(row.get("model_version", ""))))
        except (KeyError, TypeError, ValueError) as e:
            raise SourceError(
                f"{where}: row {i} ({row.get('id', '?') if isinstance(row, dict) else '?'}): {e}"
            ) from e
    return out


def _assemble(rows: list[tuple[list[float], int, float, str]], n_features: int, source: str) -> LabelledRows:
    x = np.asarray([r[0] for r in rows], dtype=np.float32).reshape(len(rows), n_features)
    order = np.argsort(np.asarray([r[2] for r in rows], dtype=np.float64), kind="stable")
    return LabelledRows(
        x=x[order],
        y=np.asarray([r[1] for r in rows], dtype=np.int64)[order],
        t=np.asarray([r[2] for r in rows], dtype=np.float64)[order],
        model_versions=tuple(sorted({r[3] for r in rows})),
        source=source,
    )


def fetch(
    url: str,
    names: list[str],
    classes: list[str],
    *,
    since: float = 0.0,
    until: float | None = None,
    inferenceservice: str | None = None,
    timeout: float = 30.0,
    page_size: int = PAGE,
) -> LabelledRows:
    """All labelled predictions from the store's ``GET /labelled`` at ``url`` (base URL)."""
    rows: list[tuple[list[float], int, float, str]] = []
    params: dict[str, Any] = {"since": since, "limit": page_size, "after": 0}
    if until is not None:
        params["until"] = until
    if inferenceservice:
        params["inferenceservice"] = inferenceservice
    endpoint = url.rstrip("/") + "/labelled"
    seen: set[tuple[str, int, str]] = set()
    with httpx.Client(timeout=timeout) as client:
        for _ in range(MAX_PAGES):
            try:
                answer = client.get(endpoint, params=params)
            except httpx.HTTPError as e:
                raise SourceError(f"feedback store {endpoint} unreachable: {e}") from e
            if answer.status_code != 200:
                raise SourceError(
                    f"feedback store {endpoint} answered {answer.status_code}: {answer.text[:200]}"
                )
            page = answer.json()
            rows += _rows_from(page, names, classes, endpoint, seen)
            if page.get("next_after") is None:
                break
            params["after"] = page["next_after"]
    return _assemble(rows, len(names), endpoint)


def read_file(path: Path, names: list[str], classes: list[str]) -> LabelledRows:
    """JSON Lines of export pages (objects with ``rows``) or of single rows."""
    rows: list[Row] = []
    seen: set[tuple[str, int, str]] = set()
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise SourceError(f"{path}:{n}: not JSON: {e}") from e
        page = obj if isinstance(obj, dict) and "rows" in obj else {"rows": [obj]}
        rows += _rows_from(page, names, classes, f"{path}:{n}", seen)
    return _assemble(rows, len(names), str(path))
