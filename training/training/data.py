"""The data set: scikit-learn's diabetes data in raw clinical units, as records.

Target: disease progression one year after baseline above the *training* median,
i.e. a balanced binary "high risk" label. ``sex`` is exposed as a category; the data
set codes it 1/2 without saying which is which, and we map 1 -> "female",
2 -> "male" (an assumption written into the feature spec's description).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

# raw sklearn column -> (our name, unit, description, valid range)
COLUMNS: list[tuple[str, str, str | None, str, tuple[float, float] | None]] = [
    ("age", "age", "years", "age at baseline", (0.0, 120.0)),
    ("sex", "sex", None, "sex (data set code 1 -> 'female', 2 -> 'male'; coding assumed)", None),
    ("bmi", "bmi", "kg/m^2", "body mass index", (10.0, 80.0)),
    ("bp", "bp", "mmHg", "average blood pressure", (30.0, 250.0)),
    ("s1", "tc", "mg/dL", "total serum cholesterol", (50.0, 500.0)),
    ("s2", "ldl", "mg/dL", "low-density lipoproteins", (10.0, 400.0)),
    ("s3", "hdl", "mg/dL", "high-density lipoproteins", (5.0, 200.0)),
    ("s4", "tch", "ratio", "total cholesterol / HDL", (0.5, 20.0)),
    ("s5", "ltg", "log(mg/dL)", "log of serum triglycerides", (1.0, 9.0)),
    ("s6", "glu", "mg/dL", "blood sugar level", (20.0, 600.0)),
]
SEX_CODES = {1: "female", 2: "male"}
REQUIRED = {"age", "sex", "bmi", "bp"}
"""Features a record must carry; the serum measurements are imputed when missing."""

TEST_SIZE = 0.25


@dataclass(frozen=True)
class Split:
    train_records: list[dict[str, float | str]]
    test_records: list[dict[str, float | str]]
    y_train: np.ndarray
    y_test: np.ndarray
    threshold: float
    """Training median of disease progression: above it is 'high risk'."""
    sha256: str
    """sha256 of the raw data (features then target, float64 bytes)."""


def _records(data: np.ndarray, columns: list[str]) -> list[dict[str, float | str]]:
    out: list[dict[str, float | str]] = []
    index = {c: i for i, c in enumerate(columns)}
    for row in data:
        record: dict[str, float | str] = {}
        for raw, name, *_ in COLUMNS:
            value = float(row[index[raw]])
            record[name] = SEX_CODES[int(value)] if name == "sex" else value
        out.append(record)
    return out


def load(seed: int) -> Split:
    ds = load_diabetes(scaled=False)
    data = np.asarray(ds.data, dtype=np.float64)
    target = np.asarray(ds.target, dtype=np.float64)
    digest = hashlib.sha256(data.tobytes() + target.tobytes()).hexdigest()
    x_train, x_test, t_train, t_test = train_test_split(data, target, test_size=TEST_SIZE, random_state=seed)
    threshold = float(np.median(t_train))
    columns = list(ds.feature_names)
    return Split(
        train_records=_records(x_train, columns),
        test_records=_records(x_test, columns),
        y_train=(t_train > threshold).astype(np.int64),
        y_test=(t_test > threshold).astype(np.int64),
        threshold=threshold,
        sha256=digest,
    )
