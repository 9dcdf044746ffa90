"""What transformer and explainer share as KServe ``Model``s: raw records in, the bundle's
feature spec and version, and a client of the predictor of the same name behind them.

Imports KServe, so only the KServe-based components import it (``serving_common``'s ``__init__``
does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import numpy as np
from kserve import Model

from serving_common.bundle import Bundle
from serving_common.features import FeatureSpec
from serving_common.predictor_client import PredictorClientBase
from serving_common.raw_request import vectorise_request

__all__ = ["RecordsModel"]

C = TypeVar("C", bound=PredictorClientBase)


class RecordsModel(Model, Generic[C]):  # type: ignore[misc]
    """A model of raw records in front of the predictor that ``client`` calls."""

    def __init__(self, name: str, *, model_dir: str, client: C, max_records: int, **options: Any) -> None:
        super().__init__(name, **options)
        self.model_dir = model_dir
        self.client = client
        self.max_records = max_records
        self.spec: FeatureSpec | None = None
        self.version: str | None = None

    def open_bundle(self) -> Bundle:
        """The bundle in ``model_dir``, with its feature spec and version read (and the spec's
        input name given to the client); the model itself stays with the predictor."""
        bundle = Bundle.open(self.model_dir)
        self.spec = bundle.spec()
        self.version = bundle.version
        self.client.input_name = self.spec.input_name
        return bundle

    def validate(self, payload: Any) -> Any:
        return payload  # preprocess validates everything (vectorise)

    def vectorise(self, payload: Any, headers: Mapping[str, str] | None) -> tuple[str, np.ndarray]:
        """The request id and the checked matrix of ``payload`` (one 400 listing every problem)."""
        assert self.spec is not None
        return vectorise_request(payload, headers, self.spec, self.max_records)
