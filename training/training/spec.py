"""Builds the feature spec from the training split (imputation values are training medians)."""

from __future__ import annotations

import numpy as np
from serving_common import Feature, FeatureSpec, MissingPolicy

from training.data import COLUMNS, REQUIRED, SEX_CODES, Split

INPUT_NAME = "input"
CLASSES = ("low_risk", "high_risk")


def build(split: Split) -> FeatureSpec:
    features = []
    for _raw, name, unit, description, bounds in COLUMNS:
        if name == "sex":
            features.append(
                Feature(
                    name=name,
                    type="categorical",
                    description=description,
                    categories=tuple(SEX_CODES[k] for k in sorted(SEX_CODES)),
                )
            )
            continue
        if name in REQUIRED:
            missing = MissingPolicy(policy="reject")
        else:
            values = np.array([r[name] for r in split.train_records], dtype=np.float64)
            missing = MissingPolicy(policy="impute", value=round(float(np.median(values)), 6))
        assert bounds is not None
        features.append(
            Feature(
                name=name,
                type="numeric",
                unit=unit,
                description=description,
                minimum=bounds[0],
                maximum=bounds[1],
                missing=missing,
            )
        )
    return FeatureSpec(
        input_name=INPUT_NAME,
        features=tuple(features),
        target=f"disease progression after one year above {split.threshold:g} (training median)",
        classes=CLASSES,
    )
