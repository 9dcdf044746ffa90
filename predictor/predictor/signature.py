"""The model's tensor signature, read once from the ONNX session, and request validation against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.errors import invalid

# onnxruntime type string -> (V2 datatype, numpy dtype)
ORT_TYPES: dict[str, tuple[str, np.dtype[Any]]] = {
    "tensor(float)": ("FP32", np.dtype(np.float32)),
    "tensor(double)": ("FP64", np.dtype(np.float64)),
    "tensor(float16)": ("FP16", np.dtype(np.float16)),
    "tensor(int8)": ("INT8", np.dtype(np.int8)),
    "tensor(int16)": ("INT16", np.dtype(np.int16)),
    "tensor(int32)": ("INT32", np.dtype(np.int32)),
    "tensor(int64)": ("INT64", np.dtype(np.int64)),
    "tensor(uint8)": ("UINT8", np.dtype(np.uint8)),
    "tensor(uint16)": ("UINT16", np.dtype(np.uint16)),
    "tensor(uint32)": ("UINT32", np.dtype(np.uint32)),
    "tensor(uint64)": ("UINT64", np.dtype(np.uint64)),
    "tensor(bool)": ("BOOL", np.dtype(np.bool_)),
}
V2_DTYPES: dict[str, np.dtype[Any]] = {v2: dt for v2, dt in ORT_TYPES.values()}
# numpy kinds a JSON array may parse to, per V2 datatype family
_JSON_KINDS = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the model: name, V2 datatype and shape (-1 for dynamic)."""

    name: str
    datatype: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    @classmethod
    def from_ort(cls, arg: Any) -> TensorSpec:
        if arg.type not in ORT_TYPES:
            raise ValueError(f"{arg.name}: onnxruntime type {arg.type} is not supported")
        datatype, dtype = ORT_TYPES[arg.type]
        shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
        return cls(arg.name, datatype, dtype, shape)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def describe_shape(self) -> str:
        return "[" + ", ".join("-1" if d < 0 else str(d) for d in self.shape) + "]"

    # --- validation --------------------------------------------------------------------

    def check_header(self, datatype: Any, shape: Any, max_rows: int) -> tuple[int, ...]:
        """Check the declared datatype and shape; returns the shape as a tuple of ints."""
        if datatype != self.datatype:
            raise invalid(
                f"input '{self.name}': datatype {datatype!r} does not match the model's {self.datatype}"
            )
        if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise invalid(f"input '{self.name}': 'shape' must be a list of integers, got {shape!r}")
        if len(shape) != len(self.shape):
            raise invalid(
                f"input '{self.name}': shape {list(shape)} has {len(shape)} dimensions; "
                f"the model expects {len(self.shape)}: {self.describe_shape()}"
            )
        for axis, (got, want) in enumerate(zip(shape, self.shape, strict=True)):
            if got < 0:
                raise invalid(f"input '{self.name}': dimension {axis} of shape {list(shape)} is negative")
            if want >= 0 and got != want:
                what = " (the number of features)" if axis == len(self.shape) - 1 and axis > 0 else ""
                raise invalid(
                    f"input '{self.name}': shape {list(shape)} does not match the model's "
                    f"{self.describe_shape()}: dimension {axis} must be {want}{what}, got {got}"
                )
        if shape and shape[0] > max_rows:
            raise invalid(
                f"input '{self.name}': {shape[0]} rows exceed the maximum of {max_rows} per request"
            )
        return tuple(shape)

    def from_json(self, data: Any, shape: tuple[int, ...]) -> np.ndarray:
        """JSON ``data`` (flat or nested lists of numbers) as an array of ``shape``."""
        if not isinstance(data, list):
            raise invalid(f"input '{self.name}': 'data' must be a list, got {type(data).__name__}")
        try:
            parsed = np.asarray(data)
        except ValueError as e:  # ragged nesting
            raise invalid(f"input '{self.name}': 'data' is not a rectangular array of numbers ({e})") from e
        kinds = _JSON_KINDS.get(self.dtype.kind, "")
        if parsed.size and parsed.dtype.kind not in kinds:
            raise invalid(
                f"input '{self.name}': 'data' must hold {self.datatype} numbers, "
                f"got {_kind_name(parsed.dtype)} values"
            )
        return self._shaped(parsed.astype(self.dtype, copy=False), shape, "values")

    def from_bytes(self, raw: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
        """Binary tensor data (little-endian, row-major) as an array view of ``shape``."""
        itemsize = self.dtype.itemsize
        if len(raw) % itemsize:
            raise invalid(
                f"input '{self.name}': {len(raw)} bytes of binary data is not a whole number of "
                f"{self.datatype} values ({itemsize} bytes each)"
            )
        return self._shaped(np.frombuffer(raw, dtype=self.dtype), shape, "values in binary data")

    def _shaped(self, array: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
        expected = int(np.prod(shape)) if shape else 1
        if array.size != expected:
            raise invalid(
                f"input '{self.name}': shape {list(shape)} needs {expected} values but "
                f"{array.size} {what} were sent"
            )
        array = array.reshape(shape)
        if self.dtype.kind == "f" and not np.isfinite(array).all():
            bad = np.argwhere(~np.isfinite(array))[0]
            raise invalid(
                f"input '{self.name}': value at index {bad.tolist()} is {array[tuple(bad)]}; "
                "every value must be finite"
            )
        return array


def _kind_name(dtype: np.dtype[Any]) -> str:
    return {"U": "string", "S": "bytes", "O": "mixed or null", "b": "boolean", "f": "float"}.get(
        dtype.kind, dtype.name
    )


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_session(cls, session: Any) -> Signature:
        return cls(
            tuple(TensorSpec.from_ort(a) for a in session.get_inputs()),
            tuple(TensorSpec.from_ort(a) for a in session.get_outputs()),
        )

    def input(self, name: Any) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise invalid(f"unknown input {name!r}; the model's inputs are {self.input_names()}")

    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def check_outputs(self, names: Sequence[Any]) -> list[str]:
        known = set(self.output_names())
        for name in names:
            if name not in known:
                raise invalid(f"unknown output {name!r}; the model's outputs are {self.output_names()}")
        if len(set(names)) != len(names):
            raise invalid(f"outputs {list(names)} name an output more than once")
        return list(names)
