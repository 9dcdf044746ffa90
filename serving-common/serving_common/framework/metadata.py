"""V2 model metadata of the KServe-based components, the same over REST and gRPC.

KServe's data plane answers ``platform: ""`` and no ``versions``; :class:`MetadataDataPlane` asks
the model for both (``platform`` and ``version`` attributes, as the predictor's ``OnnxModel`` and
:class:`~serving_common.framework.records_model.RecordsModel` have them). The inputs and outputs
are the model's ``get_input_types()`` / ``get_output_types()``: for raw-record models, one V2
tensor per feature of the bundle's feature spec (:func:`raw_inputs`).
"""

from __future__ import annotations

from typing import Any

from kserve.protocol.dataplane import DataPlane

from serving_common.features import FeatureSpec

__all__ = ["MetadataDataPlane", "raw_inputs", "tensor"]


def tensor(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    """One V2 ``$metadata_tensor``."""
    return {"name": name, "datatype": datatype, "shape": shape}


def raw_inputs(spec: FeatureSpec) -> list[dict[str, Any]]:
    """The "V2 columns" request a raw-record model accepts: one input per feature, in the spec's
    order, ``[-1]`` rows (``[-1, 1]`` is accepted too); numbers FP64 (NaN = missing: the feature's
    missing-value policy applies), categories BYTES (one of the spec's categories)."""
    return [tensor(f.name, "BYTES" if f.type == "categorical" else "FP64", [-1]) for f in spec.features]


class MetadataDataPlane(DataPlane):  # type: ignore[misc]
    """KServe's data plane whose model metadata carries the model's ``platform`` and ``versions``,
    and whose server metadata claims no extension (model-repository routes are off: 404)."""

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "extensions": []}

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        version = getattr(model, "version", None)
        platform = getattr(model, "platform", "") or ""
        return {**metadata, "platform": platform, "versions": [version] if version else []}
