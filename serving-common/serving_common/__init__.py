"""Shared by every component: model bundle format, feature spec and vectoriser, CloudEvent names."""

from serving_common.bundle import (
    CARD_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    REFERENCE_SCORES_FILE,
    SPEC_FILE,
    Bundle,
    BundleError,
    IntegrityError,
    sha256_file,
)
from serving_common.features import Feature, FeatureSpec, MissingPolicy, Problem, RecordsInvalid

__all__ = [
    "CARD_FILE",
    "MODEL_FILE",
    "REFERENCE_FILE",
    "REFERENCE_SCORES_FILE",
    "SPEC_FILE",
    "Bundle",
    "BundleError",
    "Feature",
    "FeatureSpec",
    "IntegrityError",
    "MissingPolicy",
    "Problem",
    "RecordsInvalid",
    "sha256_file",
]
