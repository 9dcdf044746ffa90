"""Outputs: predictions and rejects, written chunk by chunk as part files, then joined.

Each chunk's predictions and rejects go to ``<output>.parts/{pred,rej}-NNNNNN.<ext>`` (written to
a temporary name, then renamed), before the checkpoint records the chunk as done. When every chunk
is done the parts are joined, in chunk order and streaming, into the output and rejects files
(again through a temporary name), and the parts folder is removed. A crash at any point leaves
either a part that the checkpoint does not count (deleted on resume) or a finished one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from predictor.batch.checkpoint import fsync_dir
from predictor.batch.sources import Format

__all__ = ["Outputs", "default_rejects_path", "prediction_schema", "rejects_schema"]

_EXT = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}


def default_rejects_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.rejects{output.suffix}")


def prediction_schema(classes: Sequence[str], with_id: bool) -> pa.Schema:
    fields = [pa.field("row", pa.int64())]
    if with_id:
        fields.append(pa.field("id", pa.string()))
    fields += [pa.field("label", pa.string()), pa.field("probability", pa.float32())]
    fields += [pa.field(f"p_{c}", pa.float32()) for c in classes]
    fields.append(pa.field("model_version", pa.string()))
    return pa.schema(fields)


def rejects_schema(with_id: bool) -> pa.Schema:
    fields = [pa.field("row", pa.int64())]
    if with_id:
        fields.append(pa.field("id", pa.string()))
    fields += [pa.field("reason", pa.string()), pa.field("record", pa.string())]
    return pa.schema(fields)


class _Writer:
    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt

    def write(self, table: pa.Table, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        if self.fmt == "parquet":
            pq.write_table(table, tmp)
        elif self.fmt == "csv":
            pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(include_header=False))
        else:
            with tmp.open("wb") as fh:
                fh.writelines(orjson.dumps(row) + b"\n" for row in table.to_pylist())
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def join(self, parts: list[Path], schema: pa.Schema, target: Path) -> None:
        tmp = target.with_name(target.name + ".tmp")
        if self.fmt == "parquet":
            with pq.ParquetWriter(tmp, schema) as writer:
                for part in parts:
                    writer.write_table(pq.read_table(part, schema=schema))
        else:
            with tmp.open("wb") as out:
                if self.fmt == "csv":
                    pacsv.write_csv(schema.empty_table(), out)
                for part in parts:
                    with part.open("rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, target)


class Outputs:
    """The prediction and rejects files of one run, and their parts folder."""

    def __init__(
        self, output: Path, rejects: Path, fmt: Format, pred_schema: pa.Schema, rej_schema: pa.Schema
    ):
        self.output = output
        self.rejects = rejects
        self.parts = output.with_name(output.name + ".parts")
        self.pred_schema = pred_schema
        self.rej_schema = rej_schema
        self._writer = _Writer(fmt)
        self._ext = _EXT[fmt]

    def _part(self, kind: str, chunk: int) -> Path:
        return self.parts / f"{kind}-{chunk:06d}{self._ext}"

    def prepare(self, chunks_done: int) -> None:
        """Create the parts folder; delete parts of chunks the checkpoint does not count."""
        self.parts.mkdir(parents=True, exist_ok=True)
        for path in self.parts.iterdir():
            stem = path.name.split(".", 1)[0]
            kind, _, number = stem.partition("-")
            uncounted = kind in ("pred", "rej") and (not number.isdigit() or int(number) >= chunks_done)
            if uncounted or path.name.endswith(".tmp"):
                path.unlink()

    def write_chunk(self, chunk: int, predictions: dict[str, Any], rejects: dict[str, Any]) -> None:
        self._writer.write(pa.table(predictions, schema=self.pred_schema), self._part("pred", chunk))
        self._writer.write(pa.table(rejects, schema=self.rej_schema), self._part("rej", chunk))

    def finish(self, chunks: int) -> None:
        """Join the parts of chunks ``0 .. chunks - 1`` into the two files; remove the parts."""
        for kind, schema, target in (
            ("pred", self.pred_schema, self.output),
            ("rej", self.rej_schema, self.rejects),
        ):
            target.parent.mkdir(parents=True, exist_ok=True)
            self._writer.join([self._part(kind, c) for c in range(chunks)], schema, target)
        fsync_dir(self.output.parent)
        shutil.rmtree(self.parts)

    def discard(self) -> None:
        """Forget a previous run's parts and checkpoint (``--restart``)."""
        if self.parts.is_dir():
            shutil.rmtree(self.parts)
