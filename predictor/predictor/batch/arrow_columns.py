"""Arrow tables (a CSV chunk, Parquet batches) as chunks of raw feature columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from serving_common import FeatureSpec

from predictor.batch.chunk import Categories, Chunk, Column

__all__ = ["arrow_chunk"]


def _number(text: Any) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # the vectoriser rejects the record, naming the field


def arrow_chunk(spec: FeatureSpec, id_column: str | None, start: int, table: pa.Table) -> Chunk:
    """The chunk of an Arrow table: numbers as float64 (NaN: missing), text dictionary-encoded."""
    numeric = {f.name for f in spec.features if f.type == "numeric"}
    columns: dict[str, Column] = {}
    for name in spec.names:
        if name not in table.column_names:
            continue
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if name in numeric:
            if pa.types.is_string(col.type):
                try:
                    col = pc.cast(col, pa.float64())
                except pa.ArrowInvalid:
                    columns[name] = [_number(v) for v in col.to_pylist()]
                    continue
            columns[name] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            encoded = pc.dictionary_encode(col.combine_chunks())
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            columns[name] = Categories(codes, encoded.dictionary.to_pylist())
        else:
            columns[name] = col.to_pylist()
    ids = table.column(id_column).to_pylist() if id_column else None
    return Chunk(start, table.num_rows, columns, ids)
