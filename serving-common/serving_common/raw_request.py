"""A request of raw records (V1 ``instances`` or V2 inputs, see ``records.py``) turned into the
one float32 matrix the predictor takes, with one 400 listing every problem of every record.

Raises KServe's ``InvalidInput``, so only the KServe-based components import it
(``serving_common``'s ``__init__`` does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest

from serving_common import records
from serving_common.features import FeatureSpec, Problem
from serving_common.headers import request_id

__all__ = ["MAX_LISTED_PROBLEMS", "describe_problems", "vectorise_request"]

MAX_LISTED_PROBLEMS = 200
"""A 400 lists at most this many problems (and says how many more there are)."""


def describe_problems(problems: list[Problem], n_records: int) -> str:
    """One message naming every problem with its record index and field."""
    listed = "; ".join(str(p) for p in problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    bad = len({p.index for p in problems})
    head = f"{len(problems)} problem(s) in {bad} of {n_records} record(s): "
    return head + listed + (f"; and {more} more" if more > 0 else "")


def vectorise_request(
    payload: Any, headers: Mapping[str, str] | None, spec: FeatureSpec, max_records: int
) -> tuple[str, np.ndarray]:
    """The request id and the checked, vectorised records of ``payload`` (a V1 body or an
    :class:`InferRequest`); any bad request or record is one :class:`InvalidInput`."""
    try:
        if isinstance(payload, InferRequest):
            raw = records.from_v2(payload.inputs, max_records)
            rid = request_id(headers, payload.id)
        else:
            raw = records.from_v1(payload, max_records)
            rid = request_id(headers)
    except records.RequestInvalid as e:
        raise InvalidInput(str(e)) from e
    matrix, problems = spec.check(raw)
    if problems:
        raise InvalidInput(describe_problems(problems, len(raw)))
    return rid, matrix
