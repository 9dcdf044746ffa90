"""Raw records out of the request bodies that transformer and explainer accept.

* V1: ``{"instances": [{"age": 59, "sex": "female", ...}, ...]}``.
* V2, one input per feature column (like MLServer's pandas codec): input ``age`` FP64 ``[n]``,
  input ``sex`` BYTES ``[n]``, ... A numeric NaN (JSON ``null`` in an FP32/FP64 column) is a
  missing value, so the feature's missing-value policy applies as in training. Send numbers as
  FP64 (or INT64): FP32 rounds them before they reach the vectoriser.
* V2, one BYTES input named ``records`` (or with parameter ``content_type: "json"``) whose
  elements are JSON records (an object each, or an array of objects).

Only the *shape* of the request is checked here (:class:`RequestInvalid`); every record is then
checked against the feature spec by :meth:`FeatureSpec.check`, which names each problem by
record and field. V2 inputs are duck-typed (``name``, ``datatype``, ``shape``, ``parameters``,
``as_numpy()``, as KServe's ``InferInput``), so this module does not import KServe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "RECORDS_INPUT",
    "RequestInvalid",
    "V2Input",
    "columns_from_v2",
    "from_v1",
    "from_v2",
    "is_records_input",
]

RECORDS_INPUT = "records"
"""Name of the V2 BYTES input that holds JSON records."""
MAX_FIELDS = 100
"""Most fields one record (or V2 columns one request) may have: the models have a dozen features,
and a record with thousands of unknown fields would cost one listed problem each."""


class RequestInvalid(ValueError):
    """The request is not one of the accepted shapes (components answer 400 with the message)."""


class V2Input(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def datatype(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def parameters(self) -> Any: ...
    def as_numpy(self) -> np.ndarray: ...


def _check_count(n: int, max_records: int, what: str) -> None:
    if n == 0:
        raise RequestInvalid(f"{what} holds no records")
    if n > max_records:
        raise RequestInvalid(f"{what} holds {n} records; at most {max_records} are accepted per request")


def _check_fields(records: Sequence[Any]) -> None:
    for i, record in enumerate(records):
        if isinstance(record, Mapping) and len(record) > MAX_FIELDS:
            raise RequestInvalid(f"record {i} has {len(record)} fields; at most {MAX_FIELDS} are accepted")


def from_v1(body: Any, max_records: int) -> list[Any]:
    """The records of a V1 body ``{"instances": [...]}`` (a dict, or its JSON text)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError as e:
            raise RequestInvalid(f"the request body is not JSON: {e}") from e
        except RecursionError as e:
            raise RequestInvalid("the request body is nested too deeply") from e
    if not isinstance(body, Mapping) or "instances" not in body:
        raise RequestInvalid('expected a JSON object {"instances": [record, ...]} of raw records')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise RequestInvalid(f"'instances' must be a list of records, not {type(instances).__name__}")
    _check_count(len(instances), max_records, "'instances'")
    _check_fields(instances)
    return instances


def is_records_input(inp: V2Input) -> bool:
    params = inp.parameters
    content_type = params.get("content_type") if isinstance(params, Mapping) else None
    return inp.datatype == "BYTES" and (inp.name == RECORDS_INPUT or content_type == "json")


def _text(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _column(inp: V2Input) -> np.ndarray:
    """One V2 input as a 1-D array: numbers as they came, BYTES decoded to ``str`` (object)."""
    try:
        array = np.asarray(inp.as_numpy())
    except (ValueError, TypeError, OverflowError) as e:
        raise RequestInvalid(
            f"input '{inp.name}' ({inp.datatype}, shape {list(inp.shape)}) cannot be read: {e}"
        ) from e
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise RequestInvalid(f"input '{inp.name}' has shape {list(array.shape)}; a column is [n] or [n, 1]")
    if array.dtype == np.object_ or array.dtype.kind in "SU":
        return np.array([_text(v) for v in array.tolist()], dtype=np.object_)
    return array


def _values(inp: V2Input) -> list[Any]:
    """The elements of one V2 input as Python values (NaN as ``None``), in row-major order."""
    return _python(_column(inp))


def _python(array: np.ndarray) -> list[Any]:
    values: list[Any] = array.tolist()
    if array.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in values]
    return values


def _from_json(inp: V2Input, max_records: int) -> list[Any]:
    records: list[Any] = []
    problems: list[str] = []
    for i, element in enumerate(_values(inp)):
        if not isinstance(element, str):
            problems.append(f"element {i} is not a string")
            continue
        try:
            decoded = json.loads(element)
        except ValueError as e:
            problems.append(f"element {i} is not valid JSON ({e})")
            continue
        except RecursionError:
            problems.append(f"element {i} is nested too deeply")
            continue
        if isinstance(decoded, list):
            records.extend(decoded)
        else:
            records.append(decoded)
    if problems:
        raise RequestInvalid(f"input '{inp.name}' must hold JSON records: " + "; ".join(problems))
    _check_count(len(records), max_records, f"input '{inp.name}'")
    _check_fields(records)
    return records


def _columns(inputs: Sequence[V2Input], max_records: int) -> dict[str, np.ndarray]:
    if len(inputs) > MAX_FIELDS:
        raise RequestInvalid(
            f"the request has {len(inputs)} inputs; at most {MAX_FIELDS} columns are accepted"
        )
    columns: dict[str, np.ndarray] = {}
    for inp in inputs:
        if inp.name in columns:
            raise RequestInvalid(f"input '{inp.name}' is given more than once")
        columns[inp.name] = _column(inp)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"'{name}' has {n}" for name, n in lengths.items())
        raise RequestInvalid(f"every column must have one value per record, but {listed}")
    _check_count(next(iter(lengths.values())), max_records, "the request")
    return columns


def _from_columns(inputs: Sequence[V2Input], max_records: int) -> list[Any]:
    columns = {name: _python(array) for name, array in _columns(inputs, max_records).items()}
    n = len(next(iter(columns.values())))
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def _records_input(inputs: Sequence[V2Input]) -> V2Input | None:
    """The one input of JSON records, if the request is one (alone, or a 400)."""
    if not inputs:
        raise RequestInvalid(
            "the request has no inputs; send one input per feature, or a BYTES input "
            f"'{RECORDS_INPUT}' of JSON records"
        )
    json_inputs = [inp for inp in inputs if is_records_input(inp)]
    if not json_inputs:
        return None
    if len(inputs) > 1:
        others = [i.name for i in inputs if i is not json_inputs[0]]
        raise RequestInvalid(
            f"input '{json_inputs[0].name}' holds whole records and cannot be combined with other "
            f"inputs ({others})"
        )
    return json_inputs[0]


def columns_from_v2(inputs: Sequence[V2Input] | None, max_records: int) -> dict[str, np.ndarray] | None:
    """The feature columns of a V2 request (1-D arrays of one length, for
    :meth:`FeatureSpec.check_columns`), or ``None`` when it carries JSON records (:func:`from_v2`)."""
    inputs = list(inputs or [])
    if _records_input(inputs) is not None:
        return None
    return _columns(inputs, max_records)


def from_v2(inputs: Sequence[V2Input] | None, max_records: int) -> list[Any]:
    """The records of a V2 request's inputs: feature columns, or one input of JSON records."""
    inputs = list(inputs or [])
    records_input = _records_input(inputs)
    if records_input is not None:
        return _from_json(records_input, max_records)
    return _from_columns(inputs, max_records)
