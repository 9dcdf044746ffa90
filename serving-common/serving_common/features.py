"""The feature spec and the one vectoriser that training, transformer and explainer share.

A *record* is a mapping from raw feature name to a raw value in business terms
(``{"age": 59, "sex": "female", "bmi": 32.1, ...}``). The vectoriser turns a list of
records into the model's input: one float32 matrix ``[n_records, n_features]`` whose
columns follow the spec's feature order. Categorical features are encoded as the
index of the value in ``categories`` (0.0, 1.0, ...). Missing values are handled by
each feature's policy: ``reject`` makes the record invalid, ``impute`` puts the
value training chose (the training median) in its place.

Training builds its design matrix with :meth:`FeatureSpec.vectorise`, so serving and
training cannot disagree on encoding, order or imputation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Feature", "FeatureSpec", "MissingPolicy", "Problem", "RecordsInvalid"]


class MissingPolicy(BaseModel):
    """What to do when a record does not carry the feature (or carries ``null``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["reject", "impute"]
    """``reject``: the record is invalid; ``impute``: use ``value`` instead."""
    value: float | None = None
    """The encoded value imputed (required with ``impute``)."""

    @model_validator(mode="after")
    def _value_with_impute(self) -> MissingPolicy:
        if self.policy == "impute" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError("missing policy 'impute' needs a finite 'value'")
        return self


class Feature(BaseModel):
    """One input column of the model, in raw (business) terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: Literal["numeric", "categorical"]
    description: str = ""
    unit: str | None = None
    minimum: float | None = None
    """Smallest valid raw value (numeric features), inclusive."""
    maximum: float | None = None
    """Largest valid raw value (numeric features), inclusive."""
    categories: tuple[str, ...] | None = None
    """Allowed values (categorical features); the encoding is the index in this list."""
    missing: MissingPolicy = MissingPolicy(policy="reject")

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type == "categorical":
            if not self.categories:
                raise ValueError(f"categorical feature {self.name!r} needs 'categories'")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"categorical feature {self.name!r} has duplicate categories")
        elif self.categories is not None:
            raise ValueError(f"numeric feature {self.name!r} cannot have 'categories'")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"feature {self.name!r}: minimum is above maximum")
        return self

    def expected(self) -> str:
        """Human words for what a valid raw value of this feature is."""
        if self.type == "categorical":
            assert self.categories is not None
            return "one of " + ", ".join(repr(c) for c in self.categories)
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        unit = f" {self.unit}" if self.unit else ""
        return f"a number in [{lo}, {hi}]{unit}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record."""

    index: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"record {self.index}, field {self.field!r}: {self.message}"


class RecordsInvalid(ValueError):
    """Raised by :meth:`FeatureSpec.vectorise` with every problem of every record."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class FeatureSpec(BaseModel):
    """The model's raw inputs, in column order, and how they become one float32 tensor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    input_name: str = Field(min_length=1)
    """Name of the ONNX input that takes the vectorised matrix."""
    features: tuple[Feature, ...] = Field(min_length=1)
    target: str = ""
    """What the model predicts, in words."""
    classes: tuple[str, ...] = ("0", "1")
    """Label names, by class index."""

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSpec:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return self

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def n_features(self) -> int:
        return len(self.features)

    def categorical_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.type == "categorical"]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    # --- encoding -------------------------------------------------------------------------

    def encode_value(self, feature: Feature, value: Any) -> float | str:
        """Encode one raw value; returns the float, or a problem message (a ``str``)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if feature.missing.policy == "impute":
                assert feature.missing.value is not None
                return float(feature.missing.value)
            return f"is missing; expected {feature.expected()}"
        if feature.type == "categorical":
            assert feature.categories is not None
            if not isinstance(value, str):
                return f"has type {type(value).__name__}; expected a string, {feature.expected()}"
            try:
                return float(feature.categories.index(value))
            except ValueError:
                return f"unknown category {value!r}; expected {feature.expected()}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"has type {type(value).__name__}; expected {feature.expected()}"
        number = float(value)
        if not math.isfinite(number):
            return f"is {number}; expected {feature.expected()}"
        if (feature.minimum is not None and number < feature.minimum) or (
            feature.maximum is not None and number > feature.maximum
        ):
            return f"value {value!r} is out of range; expected {feature.expected()}"
        return number

    def check(self, records: Sequence[Any]) -> tuple[np.ndarray, list[Problem]]:
        """Vectorise ``records`` and collect every problem (the matrix is only valid if none)."""
        n = len(records)
        out = np.empty((n, self.n_features), dtype=np.float32)
        problems: list[Problem] = []
        known = {f.name for f in self.features}
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                problems.append(
                    Problem(i, "*", f"is a {type(record).__name__}; expected an object of features")
                )
                continue
            for j, feature in enumerate(self.features):
                encoded = self.encode_value(feature, record.get(feature.name))
                if isinstance(encoded, str):
                    problems.append(Problem(i, feature.name, encoded))
                else:
                    out[i, j] = encoded
            for extra in record.keys() - known:
                problems.append(Problem(i, str(extra), "is not a feature of this model"))
        return out, problems

    def check_columns(self, columns: Mapping[str, np.ndarray], n: int) -> tuple[np.ndarray, list[Problem]]:
        """:meth:`check` for records given as columns (1-D arrays of ``n`` values by feature name;
        NaN or ``None`` = missing): same matrix, same problems in the same order. Numeric columns
        are encoded and range-checked with numpy; only the values with a problem (and columns
        that are not numeric arrays) go through :meth:`encode_value`."""
        out = np.empty((n, self.n_features), dtype=np.float32)
        found: list[tuple[int, int, Problem]] = []
        for j, feature in enumerate(self.features):
            column = columns.get(feature.name)
            if column is None:
                encoded = self.encode_value(feature, None)
                if isinstance(encoded, str):
                    found += [(i, j, Problem(i, feature.name, encoded)) for i in range(n)]
                else:
                    out[:, j] = encoded
            elif feature.type == "numeric" and column.dtype.kind in "fiu":
                self._numeric_column(feature, j, column, out, found)
            else:
                for i, value in enumerate(column.tolist()):
                    if isinstance(value, float) and math.isnan(value):
                        value = None
                    encoded = self.encode_value(feature, value)
                    if isinstance(encoded, str):
                        found.append((i, j, Problem(i, feature.name, encoded)))
                    else:
                        out[i, j] = encoded
        known = {f.name for f in self.features}
        extras = [name for name in columns if name not in known]
        for k, name in enumerate(extras):
            found += [
                (i, self.n_features + k, Problem(i, name, "is not a feature of this model")) for i in range(n)
            ]
        found.sort(key=lambda t: (t[0], t[1]))
        return out, [p for _, _, p in found]

    def _numeric_column(
        self,
        feature: Feature,
        j: int,
        column: np.ndarray,
        out: np.ndarray,
        found: list[tuple[int, int, Problem]],
    ) -> None:
        values = column.astype(np.float64, copy=False)
        missing = np.isnan(values)
        with np.errstate(invalid="ignore"):
            bad = ~missing & ~np.isfinite(values)
            if feature.minimum is not None:
                bad |= values < feature.minimum
            if feature.maximum is not None:
                bad |= values > feature.maximum
        out[:, j] = values
        if missing.any():
            encoded = self.encode_value(feature, None)
            if isinstance(encoded, str):
                found += [
                    (int(i), j, Problem(int(i), feature.name, encoded)) for i in np.flatnonzero(missing)
                ]
            else:
                out[missing, j] = encoded
        for i in np.flatnonzero(bad).tolist():
            message = self.encode_value(feature, column[i].item())
            found.append((i, j, Problem(i, feature.name, str(message))))

    def vectorise(self, records: Sequence[Any]) -> np.ndarray:
        """The model input for ``records``; raises :class:`RecordsInvalid` listing all problems."""
        matrix, problems = self.check(records)
        if problems:
            raise RecordsInvalid(problems)
        return matrix

    def decode_row(self, row: Sequence[float]) -> dict[str, float | str]:
        """The raw record for one encoded row (categories back to their names)."""
        record: dict[str, float | str] = {}
        for feature, value in zip(self.features, row, strict=True):
            if feature.type == "categorical":
                assert feature.categories is not None
                code = round(float(value))
                record[feature.name] = (
                    feature.categories[code] if 0 <= code < len(feature.categories) else str(value)
                )
            else:
                record[feature.name] = float(value)
        return record
