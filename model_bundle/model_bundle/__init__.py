"""Model bundle format and feature spec, shared by every component of the serving stack."""

from model_bundle.bundle import (
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
from model_bundle.features import Feature, FeatureSpec, MissingPolicy, Problem, RecordsInvalid

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
