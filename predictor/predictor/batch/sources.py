"""Readers of raw-record files (CSV, JSON Lines, Parquet) that stream fixed-size chunks.

Every reader yields :class:`Chunk` objects holding records ``[start, end)`` cut at multiples of
``chunk_rows`` from ``start``, whatever the file's internal block sizes, so a chunk number always
means the same records (the checkpoint relies on it). Memory is bounded by one chunk plus one
block of the underlying reader.

File-level problems (unreadable format, a required column absent, a Parquet column of the wrong
type) raise :class:`InputInvalid`; problems of single records are left to the vectoriser.
CSV: every column is read as text; numbers are parsed per column (a value that is not a number
stays text, and the vectoriser rejects that record). Empty cells are missing values.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from serving_common import FeatureSpec

from predictor.batch.arrow_columns import arrow_chunk
from predictor.batch.chunk import Chunk, Column
from predictor.batch.errors import InputInvalid
from predictor.batch.lines import BLOCK, Lines

__all__ = ["FORMATS", "Format", "Source", "detect_format"]

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: Path, given: str | None) -> Format:
    if given:
        if given not in ("csv", "jsonl", "parquet"):
            raise InputInvalid(f"format {given!r} is not one of csv, jsonl, parquet")
        return given  # type: ignore[return-value]
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputInvalid(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            "use .csv, .jsonl or .parquet, or give --input-format"
        )
    return fmt


@dataclass
class Source:
    """One input file, read for a spec (and an optional id column)."""

    path: Path
    fmt: Format
    spec: FeatureSpec
    id_column: str | None = None

    def __post_init__(self) -> None:
        if not self.path.is_file():
            raise InputInvalid(f"{self.path}: no such file")
        self._required = [f.name for f in self.spec.features if f.missing.policy == "reject"]

    # --- shape checks ------------------------------------------------------------------

    def _check_columns(self, present: Sequence[str], what: str) -> list[str]:
        """The spec's features found in ``present``; raises when a required one is absent."""
        missing = [n for n in self._required if n not in present]
        if self.id_column and self.id_column not in present:
            missing.append(self.id_column)
        if missing:
            raise InputInvalid(
                f"{self.path}: {what} lacks column(s) {', '.join(repr(m) for m in missing)}; "
                f"the model needs {', '.join(self.spec.names)}"
                + (f" and the id column {self.id_column!r}" if self.id_column else "")
            )
        return [n for n in self.spec.names if n in present]

    def check(self) -> None:
        """Raise :class:`InputInvalid` when the file cannot be scored at all (before any work)."""
        if self.fmt == "csv":
            self._check_columns(self._csv_header(), "the CSV header")
        elif self.fmt == "parquet":
            self._check_parquet_types(self._parquet().schema_arrow)
        else:
            first = next(self._line_chunks(0, 1000, 1000), None)
            if first is not None:
                present = {
                    n
                    for n, values in first.columns.items()
                    if any(values[i] is not None for i in range(first.n))
                }
                if self.id_column and first.ids and any(v is not None for v in first.ids):
                    present.add(self.id_column)
                self._check_columns(sorted(present), "the first 1000 records")

    def count(self) -> int:
        """Number of records in the file (a streaming pass for CSV and JSON Lines)."""
        if self.fmt == "parquet":
            return int(self._parquet().metadata.num_rows)
        if self.fmt == "csv":
            return sum(len(block.records) for block in self._csv_blocks())
        with self.path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())

    # --- reading -----------------------------------------------------------------------

    def chunks(self, start: int, end: int, chunk_rows: int) -> Iterator[Chunk]:
        """Chunks of records ``[start, end)``, ``chunk_rows`` each (the last may be shorter)."""
        if start >= end:
            return
        if self.fmt == "parquet":
            yield from self._table_chunks(start, end, chunk_rows)
        elif self.fmt == "csv":
            yield from self._csv_chunks(start, end, chunk_rows)
        else:
            yield from self._line_chunks(start, end, chunk_rows)

    def _table_chunks(self, start: int, end: int, chunk_rows: int) -> Iterator[Chunk]:
        batches, position = self._arrow_batches(start, min(chunk_rows, 65_536))
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        chunk_start = start
        for batch in batches:
            if position + batch.num_rows <= start:
                position += batch.num_rows
                continue
            lo = max(0, start - position)
            hi = min(batch.num_rows, end - position)
            position += batch.num_rows
            if hi > lo:
                pending.append(batch.slice(lo, hi - lo))
                pending_rows += hi - lo
            while pending_rows >= chunk_rows or (pending_rows and position >= end):
                table = pa.Table.from_batches(pending)
                take = min(chunk_rows, pending_rows)
                yield arrow_chunk(self.spec, self.id_column, chunk_start, table.slice(0, take))
                rest = table.slice(take)
                pending, pending_rows = rest.to_batches(), rest.num_rows
                chunk_start += take
            if position >= end:
                return
        if pending_rows:
            yield arrow_chunk(self.spec, self.id_column, chunk_start, pa.Table.from_batches(pending))

    def _arrow_batches(self, start: int, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int]:
        """Record batches from the row group holding ``start`` on, and the record number of the first one.

        pyarrow reads a row group's selected columns at once: memory also holds one row group.
        """
        pf = self._parquet()
        self._check_parquet_types(pf.schema_arrow)
        include = [n for n in self.spec.names if n in pf.schema_arrow.names]
        if self.id_column:
            include.append(self.id_column)
        groups: list[int] = []
        first = 0
        position = 0
        for g in range(pf.metadata.num_row_groups):
            rows = pf.metadata.row_group(g).num_rows
            if position + rows > start:
                if not groups:
                    first = position
                groups.append(g)
            position += rows
        return self._guard(pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=include)), first

    def _guard(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            yield from batches
        except (pa.ArrowInvalid, OSError) as e:
            raise InputInvalid(f"{self.path}: cannot read it as Parquet: {e}") from e

    # --- CSV ---------------------------------------------------------------------------

    def _csv_header(self) -> list[str]:
        try:
            with self.path.open(newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), None)
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise InputInvalid(f"{self.path}: cannot read it as CSV: {e}") from e
        if not header:
            raise InputInvalid(f"{self.path}: the CSV file is empty; expected a header line of column names")
        return header

    def _csv_blocks(self) -> Iterator[Lines]:
        """The CSV file after its header, in blocks of whole lines, with where each record is.

        A record is a line that is not empty (pyarrow skips empty lines too); a record holding a
        newline inside quotes is not supported (pyarrow's default), and fails as a parse error.
        """
        try:
            with self.path.open("rb") as fh:
                fh.readline()
                carry = b""
                while True:
                    block = fh.read(BLOCK)
                    data = carry + block
                    if not block:
                        if data.strip(b"\r\n"):
                            yield Lines.of(data + b"\n")
                        return
                    cut = data.rfind(b"\n") + 1
                    if cut:
                        yield Lines.of(data[:cut])
                    carry = data[cut:]
        except OSError as e:
            raise InputInvalid(f"{self.path}: cannot read it: {e}") from e

    def _csv_chunks(self, start: int, end: int, chunk_rows: int) -> Iterator[Chunk]:
        include = self._check_columns(self._csv_header(), "the CSV header")
        if self.id_column:
            include.append(self.id_column)
        with self.path.open("rb") as fh:
            header = fh.readline()
        number = 0  # records before this block
        pieces: list[bytes] = []
        held, first = 0, start
        for block in self._csv_blocks():
            n = len(block.records)
            i = min(max(start - number, 0), n)
            while i < n and number + i < end:
                take = min(chunk_rows - held, n - i, end - number - i)
                if not held:
                    first = number + i
                pieces.append(block.span(i, i + take))
                held += take
                i += take
                if held == chunk_rows or first + held == end:
                    yield self._csv_chunk(first, header + b"".join(pieces), held, include)
                    pieces, held = [], 0
            number += n
            if number >= end:
                break
        if held:
            yield self._csv_chunk(first, header + b"".join(pieces), held, include)

    def _csv_chunk(self, start: int, data: bytes, n: int, include: list[str]) -> Chunk:
        convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in include},
            include_columns=include,
            strings_can_be_null=True,
            null_values=[""],
        )
        try:
            table = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 30),
                convert_options=convert,
            )
        except pa.ArrowInvalid as e:
            raise InputInvalid(f"{self.path}: cannot read records {start}-{start + n - 1} as CSV: {e}") from e
        if table.num_rows != n:
            raise InputInvalid(
                f"{self.path}: records {start}-{start + n - 1} are {n} lines but {table.num_rows} CSV rows; "
                "records must be one per line (no line breaks inside quoted values)"
            )
        return arrow_chunk(self.spec, self.id_column, start, table)

    # --- Parquet -----------------------------------------------------------------------

    def _parquet(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputInvalid(f"{self.path}: cannot read it as Parquet: {e}") from e

    def _check_parquet_types(self, schema: pa.Schema) -> None:
        self._check_columns(schema.names, "the Parquet schema")
        for feature in self.spec.features:
            if feature.name not in schema.names:
                continue
            t = schema.field(feature.name).type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if feature.type == "numeric":
                ok = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                expected = "numbers (integer or floating point)"
            else:
                ok = pa.types.is_string(t) or pa.types.is_large_string(t)
                expected = "text (string)"
            if not ok:
                raise InputInvalid(
                    f"{self.path}: column {feature.name!r} has type {t}; expected {expected}, "
                    f"{feature.expected()}"
                )

    # --- JSON Lines --------------------------------------------------------------------

    def _line_chunks(self, start: int, end: int, chunk_rows: int) -> Iterator[Chunk]:
        """JSON Lines: one record per non-blank line."""
        number = 0
        buffer: list[bytes] = []
        try:
            with self.path.open("rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    if number >= start:
                        buffer.append(line if line.endswith(b"\n") else line + b"\n")
                    number += 1
                    if len(buffer) == chunk_rows or (buffer and number >= end):
                        yield self._jsonl_chunk(number - len(buffer), buffer)
                        buffer = []
                    if number >= end:
                        return
        except OSError as e:
            raise InputInvalid(f"{self.path}: cannot read it: {e}") from e
        if buffer:  # the file ended before ``end``
            yield self._jsonl_chunk(number - len(buffer), buffer)

    def _jsonl_chunk(self, start: int, lines: list[bytes]) -> Chunk:
        records: list[Any] = []
        unreadable: dict[int, str] = {}
        for i, line in enumerate(lines):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:  # NaN / Infinity literals, as Python's json writes them
                    record = json.loads(line)
                except ValueError as e:
                    unreadable[i] = f"the line is not valid JSON ({e})"
                    record = {}
            if not isinstance(record, dict):
                unreadable[i] = f"is a {type(record).__name__}; expected an object of features"
                record = {}
            records.append(record)
        columns: dict[str, Column] = {n: [r.get(n) for r in records] for n in self.spec.names}
        ids = [r.get(self.id_column) for r in records] if self.id_column else None
        return Chunk(start, len(records), columns, ids, unreadable)
