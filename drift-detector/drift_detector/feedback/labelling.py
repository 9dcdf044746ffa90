"""Feedback pairs joined to stored predictions: each pair's outcome, the good ones labelled.

A pair names a prediction by its answer ``id`` or ``ce-id`` (every stream that logged it:
transformer and predictor), and an instance of a multi-row request by ``row``. Refused: unknown
id (never logged, not answered 200, or past retention), a prediction of another model, a row that
does not exist (or none given for a multi-row request), a prediction already labelled (the first
label is kept: a duplicate, also within one batch). The labels of the accepted pairs are written
in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from drift_detector.feedback.pairs import Outcome, Pair, check
from drift_detector.feedback.store import Store

__all__ = ["label_pairs"]


def label_pairs(
    store: Store, model: str, pairs: Sequence[Pair], classes: Sequence[str], retention: float
) -> list[Outcome]:
    """Label the predictions the pairs name; one outcome per pair, in order (blocking)."""
    outcomes: dict[int, Outcome] = {}
    checked: list[tuple[Pair, str, int, int | None]] = []
    for pair in pairs:
        result = check(pair, classes)
        if isinstance(result, Outcome):
            outcomes[pair.index] = result
        else:
            checked.append((pair, *result))
    found = store.find(quoted for _, quoted, _, _ in checked)
    updates: list[tuple[int, int]] = []
    taken: dict[int, int] = {}
    for pair, quoted, label, row in checked:
        where = f"pair {pair.index} (id {quoted!r})"
        matches = found.get(quoted, [])
        if not matches:
            outcomes[pair.index] = Outcome(
                pair.index,
                quoted,
                "unknown_id",
                f"{where}: no prediction has this id (never logged, not answered 200, "
                f"or older than the retention of {retention:g} days)",
            )
            continue
        mine = [m for m in matches if not m.model_name or m.model_name == model]
        if not mine:
            outcomes[pair.index] = Outcome(
                pair.index,
                quoted,
                "wrong_model",
                f"{where}: the prediction was made by model {matches[0].model_name!r}, not {model!r}",
            )
            continue
        if row is None:
            chosen = [m for m in mine if m.rows == 1]
            if not chosen:
                outcomes[pair.index] = Outcome(
                    pair.index,
                    quoted,
                    "bad_row",
                    f"{where}: the request had {mine[0].rows} rows; give 'row' (0..{mine[0].rows - 1})",
                )
                continue
        else:
            chosen = [m for m in mine if m.row == row]
            if not chosen:
                outcomes[pair.index] = Outcome(
                    pair.index,
                    quoted,
                    "bad_row",
                    f"{where}: row {row} does not exist; the request had {mine[0].rows} row(s)",
                )
                continue
        fresh = [m for m in chosen if m.label is None and m.pk not in taken]
        if not fresh:
            first = next((m.label for m in chosen if m.label is not None), None)
            earlier = taken.get(chosen[0].pk, first)
            outcomes[pair.index] = Outcome(
                pair.index,
                quoted,
                "duplicate",
                f"{where}: the prediction already has a label ({_name(earlier, classes)}); "
                "the first label is kept",
            )
            continue
        for m in fresh:
            taken[m.pk] = label
            updates.append((m.pk, label))
        outcomes[pair.index] = Outcome(pair.index, quoted, "accepted", labelled=len(fresh))
    store.label(updates, time.time())
    return [outcomes[p.index] for p in pairs]


def _name(label: int | None, classes: Sequence[str]) -> str:
    if label is None:
        return "unknown"
    return repr(classes[label]) if label < len(classes) else str(label)
