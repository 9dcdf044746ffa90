"""Feedback bodies (V1 and V2 shapes) read into pairs, and each pair's outcome.

V1 ``POST /v1/models/NAME:feedback``::

    {"instances": [{"id": "<answer id or ce-id>", "label": "high_risk" | 1 | true, "row": 0}, ...]}

V2 ``POST /v2/models/NAME/feedback`` (an inference request whose inputs are the pairs' columns)::

    {"inputs": [{"name": "id", "datatype": "BYTES", "shape": [n], "data": [...]},
                {"name": "label", "datatype": "BYTES" | "INT64" | "BOOL", "shape": [n], "data": [...]},
                {"name": "row", "datatype": "INT64", "shape": [n], "data": [...]}]}   # row optional

A label is a class name of the bundle (``classes`` in ``feature_spec.json``), its index, or a
boolean (``true`` = the positive class, ``classes[1]``). ``row`` picks the instance of a
multi-row request (0-based); it may be left out when the request had one row. A body that cannot
be read as pairs at all raises :class:`Malformed` (400, nothing taken); every other problem is
one pair's outcome (:class:`Outcome`), and the good pairs are taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Malformed", "Outcome", "Pair", "label_index", "v1_pairs", "v2_pairs"]

MAX_ID = 256


class Malformed(ValueError):
    """The body is no list of pairs; the message names the field and what was expected."""


@dataclass(frozen=True, slots=True)
class Pair:
    index: int
    id: Any
    label: Any
    row: Any = None


@dataclass(slots=True)
class Outcome:
    index: int
    id: str
    outcome: str
    """``accepted`` or the reason it was not (a value of ``feedback_pairs_total{outcome}``)."""
    error: str = ""
    labelled: int = 0
    """Predictions labelled by this pair (one per stream that logged it: transformer and predictor)."""

    def doc(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "outcome": self.outcome}
        if self.error:
            out["error"] = self.error
        else:
            out["labelled"] = self.labelled
        return out


def v1_pairs(body: Any) -> list[Pair]:
    if not isinstance(body, dict) or "instances" not in body:
        raise Malformed('expected a JSON object {"instances": [{"id": ..., "label": ...}, ...]}')
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise Malformed('\'instances\' must be a non-empty list of {"id", "label"} objects')
    return [
        Pair(i, p.get("id"), p.get("label"), p.get("row")) if isinstance(p, dict) else Pair(i, None, None, p)
        for i, p in enumerate(instances)
    ]


def v2_pairs(body: Any) -> list[Pair]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise Malformed('expected a V2 request {"inputs": [{"name": "id", ...}, {"name": "label", ...}]}')
    columns: dict[str, list[Any]] = {}
    for position, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise Malformed(f"inputs[{position}] must be an object with a 'name'")
        name = tensor["name"]
        if name not in ("id", "label", "row"):
            raise Malformed(
                f"input {name!r} is not a feedback input; expected 'id', 'label' and optionally 'row'"
            )
        data = tensor.get("data")
        shape = tensor.get("shape")
        if not isinstance(data, list):
            raise Malformed(f"input {name!r}: 'data' must be a list")
        if not isinstance(shape, list) or len(shape) != 1 or shape[0] != len(data):
            raise Malformed(
                f"input {name!r}: 'shape' must be [{len(data)}] (one value per pair), not {shape!r}"
            )
        columns[name] = data
    for required in ("id", "label"):
        if required not in columns:
            raise Malformed(
                f"input {required!r} is missing; expected inputs 'id' and 'label' (and optionally 'row')"
            )
    n = len(columns["id"])
    if n == 0:
        raise Malformed("input 'id' is empty: send at least one pair")
    for name, data in columns.items():
        if len(data) != n:
            raise Malformed(f"input {name!r} has {len(data)} values, input 'id' has {n}: one per pair")
    rows = columns.get("row", [None] * n)
    return [Pair(i, columns["id"][i], columns["label"][i], rows[i]) for i in range(n)]


def label_index(label: Any, classes: Sequence[str]) -> int | None:
    """The class index a label names, else ``None``."""
    if isinstance(label, bool):
        return int(label)
    if isinstance(label, int):
        return label if 0 <= label < max(len(classes), 2) else None
    if isinstance(label, float) and label.is_integer():
        return label_index(int(label), classes)
    if isinstance(label, str):
        if label in classes:
            return list(classes).index(label)
        if label.strip().isdigit():
            return label_index(int(label.strip()), classes)
    return None


def check(pair: Pair, classes: Sequence[str]) -> tuple[str, int, int | None] | Outcome:
    """The pair's id, class index and row, or the outcome saying what is wrong with it."""
    quoted = pair.id if isinstance(pair.id, str) else ""
    if not isinstance(pair.id, str) or not pair.id or len(pair.id) > MAX_ID:
        return Outcome(
            pair.index,
            quoted,
            "malformed",
            f"pair {pair.index}: 'id' must be a non-empty string of at most {MAX_ID} characters",
        )
    label = label_index(pair.label, classes)
    if label is None:
        allowed = ", ".join(repr(c) for c in classes) or "0, 1"
        return Outcome(
            pair.index,
            pair.id,
            "unknown_label",
            f"pair {pair.index} (id {pair.id!r}): label {pair.label!r} is not a class of this model; "
            f"expected one of {allowed}, their index, or a boolean",
        )
    row = pair.row
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
        return Outcome(
            pair.index,
            pair.id,
            "bad_row",
            f"pair {pair.index} (id {pair.id!r}): 'row' must be a non-negative integer, not {row!r}",
        )
    return pair.id, label, row
